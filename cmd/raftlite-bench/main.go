// Command raftlite-bench measures raftlite over its HTTP API: it starts loopback clusters of raftlited
// processes (1 and 3 nodes), drives them with concurrent keep-alive clients, and prints a markdown table
// of medians over several runs, beside the limits of the machine (raw fsyncs/s and raw SQLite inserts/s
// on the same disk), so every figure can be read as a fraction of what the hardware allows.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	binary    string
	sizes     []int
	runs      int
	duration  time.Duration
	serial    int
	catchup   int // MiB; 0 skips the catch-up and start-up measurements
	only      string
	profiles  string // directory for CPU profiles of the node under load; "" for none
	cdc       bool   // also compare the 32-client insert load with change data capture off and on
	backup    int    // MiB of the database whose automatic backup and restore are timed; 0 skips them
	saturate  time.Duration
	nodeFlags string // extra raftlited flags for the saturated run's nodes
	compare   string // another server's binary (rqlited) to compare with; "" for none
}

func main() {
	var o options
	var sizes string
	flag.StringVar(&o.binary, "raftlited", "", "raftlited binary (default: build it from this module)")
	flag.StringVar(&sizes, "nodes", "1,3", "cluster sizes to measure")
	flag.IntVar(&o.runs, "runs", 3, "runs of each scenario; the table shows medians")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each timed run")
	flag.IntVar(&o.serial, "serial", 2000, "inserts in each one-client run")
	flag.IntVar(&o.catchup, "catchup", 0, "size in MiB of the database a new node catches up from (0: skip)")
	flag.StringVar(&o.only, "only", "", "run only scenarios whose name contains this")
	flag.BoolVar(&o.cdc, "cdc", false, "also compare the 32-client insert load with change data capture off and on (fresh clusters, alternating; the nodes deliver to a webhook in this process); -only CDC runs only that")
	flag.IntVar(&o.backup, "backup", 0, "time the automatic backup of a database of this many MiB, and the restore of a new node from it (0: skip); -only Backup compares the insert load during uploads and without")
	flag.DurationVar(&o.saturate, "saturate", time.Minute, "length of the saturated run (-only Saturated): 32 clients inserting rows and 2 inserting 4 MiB values on a 3-node cluster, counting elections")
	flag.StringVar(&o.nodeFlags, "saturate-flags", "", "extra raftlited flags for the saturated run's nodes, e.g. \"-raft-election-timeout 300ms\"")
	flag.StringVar(&o.compare, "compare", "", "compare with this server binary (rqlited v10: it takes the same flags), alternating fresh 3-node clusters for -runs rounds; prints medians and ratios, and nothing else")
	flag.StringVar(&o.profiles, "cpuprofile", "", "write a CPU profile of the node under load, for the first run of each timed scenario, into this directory")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "raftlite-bench: bad -nodes %q\n", sizes)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "raftlite-bench:", err)
		os.Exit(1)
	}
}

// table collects one value per scenario and cluster size.
type table struct {
	order []string
	cells map[string]map[int]string
}

func (t *table) set(scenario string, nodes int, v string) {
	if t.cells == nil {
		t.cells = map[string]map[int]string{}
	}
	if _, ok := t.cells[scenario]; !ok {
		t.order = append(t.order, scenario)
		t.cells[scenario] = map[int]string{}
	}
	t.cells[scenario][nodes] = v
}

func run(o options) error {
	if o.compare != "" {
		if _, err := os.Stat(o.compare); err != nil {
			return fmt.Errorf("-compare: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "raftlite-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.binary == "" {
		o.binary = filepath.Join(dir, "raftlited")
		build := exec.Command("go", "build", "-tags", "sqlite_column_metadata sqlite_fts5 sqlite_math_functions sqlite_preupdate_hook", "-o", o.binary, "github.com/raftlite/raftlite/cmd/raftlited")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build raftlited: %w", err)
		}
	}
	if o.compare != "" {
		return measureComparison(o, dir)
	}
	var t table
	limits := map[string]string{}
	fs, err := fsyncsPerSecond(dir, 2*time.Second)
	if err != nil {
		return err
	}
	limits["raw fsyncs/s of the data disk (512-byte write + fsync)"] = fmt.Sprintf("%.0f", fs)
	ri, err := sqliteInsertsPerSecond(dir, 2*time.Second)
	if err != nil {
		return err
	}
	limits["raw SQLite inserts/s (WAL, synchronous=NORMAL, one connection, one insert per transaction)"] = fmt.Sprintf("%.0f", ri)

	for _, n := range o.sizes {
		if !wantAnyCluster(o) {
			break
		}
		if err := measureCluster(o, dir, n, &t); err != nil {
			return fmt.Errorf("%d-node cluster: %w", n, err)
		}
	}
	var cdcResults []cdcResult
	if settings := cdcWanted(o); len(settings) > 0 {
		wh, err := startWebhook()
		if err != nil {
			return err
		}
		defer wh.stop()
		for _, n := range o.sizes {
			if err := measureCDC(o, dir, n, settings, wh, &cdcResults); err != nil {
				return fmt.Errorf("%d-node cluster, CDC: %w", n, err)
			}
		}
	}
	if strings.Contains(o.only, "Saturated") {
		if err := measureSaturated(o, dir, limits); err != nil {
			return fmt.Errorf("saturated run: %w", err)
		}
	}
	if o.catchup > 0 {
		if err := measureCatchup(o, dir, limits); err != nil {
			return err
		}
	}
	if o.backup > 0 || strings.Contains(o.only, "Backup") {
		s3, err := startS3(dir)
		if err != nil {
			return err
		}
		defer s3.stop()
		if strings.Contains(o.only, "Backup") {
			if err := measureBackupLoad(o, dir, s3, limits); err != nil {
				return fmt.Errorf("backup load: %w", err)
			}
		}
		if o.backup > 0 {
			if err := measureBackupSize(o, dir, s3, limits); err != nil {
				return fmt.Errorf("backup size: %w", err)
			}
		}
	}
	report(o, t, limits)
	reportCDC(o, cdcResults)
	return nil
}

func want(o options, scenario string) bool { return o.only == "" || strings.Contains(scenario, o.only) }

// The scenarios of measureCluster.
const (
	scSerial  = "1 client, one insert per request: p50 / p99"
	sc32      = "32 clients, one insert per request: requests/s (p50 / p99)"
	scBatch   = "4 clients, 100 inserts per request: statements/s"
	scQueued  = "queued writes, 16 clients: statements/s"
	rssIdle   = "RSS of the leader, idle"
	rssLoaded = "RSS of the leader, under the 32-client insert load"

	fsyncsLoaded    = "Raft log fsyncs per committed entry, 32-client insert load: leader (followers)"
	electionsLoaded = "elections during the 32-client insert runs"
)

func readScenario(level, where string) string {
	return fmt.Sprintf("16 clients reading by primary key, level %s, on the %s: requests/s", level, where)
}

var readLevels = []string{"none", "weak", "linearizable", "strong"}

// wantAnyCluster tells whether -only selects any scenario of measureCluster (else it starts no cluster).
func wantAnyCluster(o options) bool {
	names := []string{scSerial, sc32, scBatch, scQueued}
	for _, where := range []string{"leader", "follower"} {
		for _, level := range readLevels {
			names = append(names, readScenario(level, where))
		}
	}
	return slices.ContainsFunc(names, func(s string) bool { return want(o, s) })
}

func measureCluster(o options, dir string, n int, t *table) error {
	c, err := startCluster(o.binary, filepath.Join(dir, fmt.Sprintf("c%d", n)), n)
	if err != nil {
		return err
	}
	defer c.stop()
	leader, err := c.benchLeader()
	if err != nil {
		return err
	}
	t.set(rssIdle, n, mib(leader.rss()))
	firstID := ids.Load() + 1 // ids run on across clusters; reads pick only this cluster's rows

	if s := scSerial; want(o, s) {
		var p50, p99 []float64
		for r := 0; r < o.runs; r++ {
			lat := make([]time.Duration, 0, o.serial)
			for i := 0; i < o.serial; i++ {
				start := time.Now()
				if _, err := insertOne(leader); err != nil {
					return err
				}
				lat = append(lat, time.Since(start))
			}
			p50, p99 = append(p50, pct(lat, 0.50)), append(p99, pct(lat, 0.99))
		}
		t.set(s, n, fmt.Sprintf("%s / %s", ms(median(p50)), ms(median(p99))))
	}
	if s := sc32; want(o, s) {
		var rssPeak uint64
		stopRSS := sampleRSS(leader, &rssPeak)
		watch, err := watchRaft(c.leaderFirst(leader))
		if err != nil {
			return err
		}
		m, err := repeat(o, profiled(o, leader, n, s, func() (measurement, error) {
			return runClients(32, o.duration, func(int) (int, error) { return insertOne(leader) })
		}))
		stopRSS()
		if err != nil {
			return err
		}
		d, err := watch.delta()
		if err != nil {
			return err
		}
		t.set(s, n, fmt.Sprintf("%.0f (%s / %s)", m.rate, ms(m.p50), ms(m.p99)))
		t.set(rssLoaded, n, mib(rssPeak))
		t.set(fsyncsLoaded, n, d.fsyncText())
		t.set(electionsLoaded, n, fmt.Sprintf("%.0f", d.elections))
	}
	if s := scBatch; want(o, s) {
		m, err := repeat(o, profiled(o, leader, n, s, func() (measurement, error) {
			return runClients(4, o.duration, func(int) (int, error) { return insertBatch(leader) })
		}))
		if err != nil {
			return err
		}
		t.set(s, n, fmt.Sprintf("%.0f", m.stmtRate))
	}
	if s := scQueued; want(o, s) {
		m, err := repeat(o, func() (measurement, error) {
			start := time.Now()
			mm, err := runClients(16, o.duration, func(int) (int, error) { return queueOne(leader) })
			if err == nil {
				err = drainQueue(leader)
			}
			mm.elapsed = time.Since(start) // until everything queued is written
			return mm, err
		})
		if err != nil {
			return err
		}
		t.set(s, n, fmt.Sprintf("%.0f", m.stmtRate))
	}
	if ids.Load() < firstID+1000 {
		// The insert scenarios were left out (-only): the reads need rows.
		if err := seedRows(leader, 1000); err != nil {
			return err
		}
	}
	maxID := ids.Load()
	targets := []*node{leader}
	if f := c.follower(leader); f != nil {
		targets = append(targets, f)
	}
	for _, target := range targets {
		where := "leader"
		if target != leader {
			where = "follower"
		}
		for _, level := range readLevels {
			s := readScenario(level, where)
			if !want(o, s) {
				continue
			}
			before, err := scrapeRaft(target)
			if err != nil {
				return err
			}
			m, err := repeat(o, profiled(o, target, n, s, func() (measurement, error) {
				return runClients(16, o.duration, func(int) (int, error) { return readOne(target, level, firstID, maxID) })
			}))
			if err != nil {
				return err
			}
			after, err := scrapeRaft(target)
			if err != nil {
				return err
			}
			v := fmt.Sprintf("%.0f", m.rate)
			if rounds := after.readRounds - before.readRounds; level == "linearizable" && rounds > 0 {
				v += fmt.Sprintf(" (%.1f reads per ReadIndex round)", (after.readReads-before.readReads)/rounds)
			}
			t.set(s, n, v)
		}
	}
	return nil
}

// profiled wraps a timed run so that its first call is profiled on target (see -cpuprofile).
func profiled(o options, target *node, size int, scenario string, f func() (measurement, error)) func() (measurement, error) {
	first := true
	return func() (measurement, error) {
		if !first {
			return f()
		}
		first = false
		wait := profileDuring(o.profiles, target, size, scenario, o.duration)
		defer wait()
		return f()
	}
}

// summary is the median over runs.
type summary struct{ rate, stmtRate, p50, p99 float64 }

func repeat(o options, f func() (measurement, error)) (summary, error) {
	var rate, stmts, p50, p99 []float64
	for r := 0; r < o.runs; r++ {
		m, err := f()
		if err != nil {
			return summary{}, err
		}
		rate, stmts = append(rate, m.perSecond()), append(stmts, m.stmtsPerSecond())
		p50, p99 = append(p50, pct(m.lat, 0.5)), append(p99, pct(m.lat, 0.99))
	}
	return summary{median(rate), median(stmts), median(p50), median(p99)}, nil
}

func pct(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(float64(len(s))*p))])
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func ms(ns float64) string { return fmt.Sprintf("%.2f ms", ns/1e6) }
func mib(b uint64) string  { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func report(o options, t table, limits map[string]string) {
	fmt.Printf("\n## raftlite-bench, %s\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("%d CPUs (%s/%s, %s); medians of %d runs of %s each (one-client runs: %d inserts); loopback clusters\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, memTotal(), o.runs, o.duration, o.serial)
	if len(t.order) > 0 {
		fmt.Printf("| scenario |")
		for _, n := range o.sizes {
			fmt.Printf(" %d-node |", n)
		}
		fmt.Printf("\n|---|")
		for range o.sizes {
			fmt.Printf("---|")
		}
		fmt.Println()
		for _, s := range t.order {
			fmt.Printf("| %s |", s)
			for _, n := range o.sizes {
				v := t.cells[s][n]
				if v == "" {
					v = "-"
				}
				fmt.Printf(" %s |", v)
			}
			fmt.Println()
		}
	}
	fmt.Printf("\n| limit of this machine | value |\n|---|---|\n")
	keys := make([]string, 0, len(limits))
	for k := range limits {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("| %s | %s |\n", k, limits[k])
	}
}
