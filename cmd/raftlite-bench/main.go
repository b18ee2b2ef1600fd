// Command raftlite-bench measures a raftlite cluster over its HTTP API: it starts a loopback cluster of
// raftlited processes, drives it with concurrent keep-alive clients, and prints a markdown table of
// medians over several runs.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

func main() {
	var (
		binary   = flag.String("raftlited", "", "raftlited binary (default: build it from this module)")
		nodes    = flag.Int("nodes", 3, "cluster size")
		runs     = flag.Int("runs", 3, "runs of each scenario; the table shows medians")
		duration = flag.Duration("duration", 5*time.Second, "length of each timed run")
		serial   = flag.Int("serial", 2000, "inserts in the one-client scenario")
		clients  = flag.Int("clients", 32, "clients in the concurrent scenario")
		keep     = flag.Bool("keep", false, "keep the data directories")
	)
	flag.Parse()
	if err := run(*binary, *nodes, *runs, *duration, *serial, *clients, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "raftlite-bench:", err)
		os.Exit(1)
	}
}

func run(binary string, nodes, runs int, duration time.Duration, serial, clients int, keep bool) error {
	dir, err := os.MkdirTemp("", "raftlite-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	if binary == "" {
		binary = filepath.Join(dir, "raftlited")
		build := exec.Command("go", "build", "-o", binary, "github.com/raftlite/raftlite/cmd/raftlited")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build raftlited: %w", err)
		}
	}
	c, err := startCluster(binary, dir, nodes)
	if err != nil {
		return err
	}
	defer c.stop()
	leader, err := c.leader()
	if err != nil {
		return err
	}
	if err := leader.exec(`CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		return err
	}
	var rows []row
	var lat [][]time.Duration
	for r := 0; r < runs; r++ {
		d, err := serialInserts(leader, serial)
		if err != nil {
			return err
		}
		lat = append(lat, d)
	}
	rows = append(rows, latencyRow(fmt.Sprintf("1 client, one insert per request (%d-node)", nodes), lat))
	var tput []float64
	lat = nil
	for r := 0; r < runs; r++ {
		rps, d, err := concurrentInserts(leader, clients, duration)
		if err != nil {
			return err
		}
		tput, lat = append(tput, rps), append(lat, d)
	}
	row := latencyRow(fmt.Sprintf("%d clients, one insert per request (%d-node)", clients, nodes), lat)
	row.throughput = median(tput)
	rows = append(rows, row)
	printTable(rows, nodes, runs)
	return nil
}

type row struct {
	name       string
	throughput float64
	p50, p99   time.Duration
}

func latencyRow(name string, runs [][]time.Duration) row {
	var p50s, p99s []float64
	for _, d := range runs {
		slices.Sort(d)
		p50s = append(p50s, float64(percentile(d, 0.50)))
		p99s = append(p99s, float64(percentile(d, 0.99)))
	}
	return row{name: name, p50: time.Duration(median(p50s)), p99: time.Duration(median(p99s))}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func printTable(rows []row, nodes, runs int) {
	fmt.Printf("\nraftlite-bench: %d-node loopback cluster, %d runs each (medians), %d CPUs, %s\n\n",
		nodes, runs, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	fmt.Println("| scenario | requests/s | p50 | p99 |")
	fmt.Println("|---|---|---|---|")
	for _, r := range rows {
		tp := "-"
		if r.throughput > 0 {
			tp = fmt.Sprintf("%.0f", r.throughput)
		}
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, tp, fmtDur(r.p50), fmtDur(r.p99))
	}
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}
