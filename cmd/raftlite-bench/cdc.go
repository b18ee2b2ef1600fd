package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The CDC comparison (-cdc, or -only matching "CDC"): the 32-client insert load on freshly started
// clusters with change data capture off and on, alternating (off, on with each setting, off, ...), with the
// on-clusters delivering to a webhook served by this process. The webhook takes, for every payload entry
// it sees first, its receive time minus the entry's commit_timestamp (the leader's clock when it proposed
// the entry; the same machine's clock here) as the delay from commit to delivery, and checks afterwards
// that every acknowledged insert was delivered.

// cdcSetting is one CDC configuration compared against CDC off.
type cdcSetting struct {
	name     string
	json     string // extra fields of the JSON configuration file, besides endpoint
	endpoint string // "" for the webhook of this process
}

var cdcSettings = []cdcSetting{
	{"max_batch_size 10, max_batch_delay 200ms (defaults)", ``, ""},
	{"max_batch_size 100, max_batch_delay 10ms", `,"max_batch_size":100,"max_batch_delay":"10ms"`, ""},
	// Capture only: every voter writes its queue, nothing is sent, and the queue is pruned by age once a
	// high_watermark_interval (1 s); what this costs is the capture, the rest of the "on" cost the sending.
	{"capture only (endpoint pull, pull_retention 1s: nothing sent)", `,"pull_retention":"1s"`, "pull"},
}

func (s cdcSetting) sends() bool { return s.endpoint == "" }

func cdcScenario(s cdcSetting) string {
	return "CDC off vs on, 32 clients, one insert per request, " + s.name
}

// cdcWanted is the settings to compare.
func cdcWanted(o options) []cdcSetting {
	var out []cdcSetting
	for _, s := range cdcSettings {
		// Without -cdc, only an -only naming CDC selects it (-only "32 clients" keeps meaning the usual one).
		if (o.cdc || strings.Contains(o.only, "CDC")) && want(o, cdcScenario(s)) {
			out = append(out, s)
		}
	}
	return out
}

// cdcRun is one timed run: the load, and with CDC on what the webhook saw.
type cdcRun struct {
	rate, p50, p99 float64 // requests/s; client latencies in ns
	nodeCPU        float64 // CPU seconds of every node process per 1,000 requests
	benchCPU       float64 // CPU seconds of this process (clients and webhook) per 1,000 requests
	acked          int     // inserts acknowledged
	// With CDC on:
	indexes          int     // distinct indexes delivered with an insert into bench
	missing          int     // acknowledged inserts whose row was not delivered
	repeats          int     // payload entries received again (same index)
	posts            int     // POSTs received
	delayP50         float64 // ms, commit to delivery
	delayP99         float64
	delayMax         float64
	drain            time.Duration // from the end of the load to the last acknowledged insert delivered
	firstID, lastID  int64
	receivedAfterEnd int // entries first received after the load stopped
}

// cdcResult is what one cluster size and one setting came to.
type cdcResult struct {
	nodes   int
	setting cdcSetting
	off, on []cdcRun
}

// webhook is the CDC endpoint: it answers 200 to every POST and records the payload entries of the
// current run (the run number is in the path, so a stopped cluster's late POST does not count).
type webhook struct {
	addr string
	srv  *http.Server

	mu       sync.Mutex
	run      int
	seen     map[uint64]bool
	benchIdx int // distinct indexes with an insert into bench
	ids      map[int64]bool
	delays   []float64 // ms
	repeats  int
	posts    int
	bad      []string
	stale    int
	lastNew  time.Time // receive time of the last POST that brought a new entry
	pending  []received
	loadEnd  time.Time
	afterEnd int
}

func startWebhook() (*webhook, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	w := &webhook{addr: ln.Addr().String()}
	w.srv = &http.Server{Handler: w, ReadHeaderTimeout: 10 * time.Second}
	go w.srv.Serve(ln)
	return w, nil
}

func (w *webhook) stop() { w.srv.Close() }

// reset starts run r and returns its endpoint URL.
func (w *webhook) reset(r int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.run, w.seen, w.ids, w.delays = r, map[uint64]bool{}, map[int64]bool{}, nil
	w.benchIdx, w.repeats, w.posts, w.bad, w.lastNew, w.loadEnd, w.afterEnd, w.pending = 0, 0, 0, nil, time.Time{}, time.Time{}, 0, nil
	return fmt.Sprintf("http://%s/cdc/%d", w.addr, r)
}

type cdcEnvelope struct {
	NodeID  string `json:"node_id"`
	Payload []struct {
		Index           uint64 `json:"index"`
		CommitTimestamp int64  `json:"commit_timestamp"`
		Events          []struct {
			Op       string `json:"op"`
			Table    string `json:"table"`
			NewRowID int64  `json:"new_row_id"`
		} `json:"events"`
	} `json:"payload"`
}

// ServeHTTP keeps the body and its receive time; decode reads them later, out of the timed load, so that
// the endpoint takes as little as it can of the CPU the cluster shares with it.
func (w *webhook) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	recv := time.Now()
	rw.WriteHeader(http.StatusOK)
	if err != nil {
		return
	}
	run, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/cdc/"))
	w.mu.Lock()
	defer w.mu.Unlock()
	if run != w.run || w.seen == nil {
		w.stale++
		return
	}
	w.posts++
	w.pending = append(w.pending, received{recv, body})
}

type received struct {
	at   time.Time
	body []byte
}

// decode reads the POSTs received so far; w.mu is held.
func (w *webhook) decode() {
	for _, p := range w.pending {
		var env cdcEnvelope
		if err := json.Unmarshal(p.body, &env); err != nil {
			if len(w.bad) < 3 {
				w.bad = append(w.bad, fmt.Sprintf("undecodable POST: %v", err))
			}
			continue
		}
		recvMs := float64(p.at.UnixNano()) / 1e6
		for _, e := range env.Payload {
			if w.seen[e.Index] {
				w.repeats++
				continue
			}
			w.seen[e.Index] = true
			w.lastNew = p.at
			if !w.loadEnd.IsZero() && p.at.After(w.loadEnd) {
				w.afterEnd++
			}
			if e.CommitTimestamp == 0 {
				if len(w.bad) < 3 {
					w.bad = append(w.bad, fmt.Sprintf("index %d without commit_timestamp", e.Index))
				}
			} else {
				// commit_timestamp is whole milliseconds (truncated): the delay reads up to 1 ms long.
				w.delays = append(w.delays, recvMs-float64(e.CommitTimestamp))
			}
			inBench := false
			for _, ev := range e.Events {
				if ev.Op == "INSERT" && ev.Table == "bench" {
					w.ids[ev.NewRowID] = true
					inBench = true
				}
			}
			if inBench {
				w.benchIdx++
			}
		}
	}
	w.pending = nil
}

// delivered counts the distinct rows inserted into bench delivered so far (on a fresh cluster, all of
// them the run's).
func (w *webhook) delivered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.decode()
	return len(w.ids)
}

// measureCDC runs, for a cluster of n nodes, rounds of: the load with CDC off, then with CDC on for
// each setting, every run on a freshly started cluster.
func measureCDC(o options, dir string, n int, settings []cdcSetting, wh *webhook, results *[]cdcResult) error {
	res := make([]cdcResult, len(settings))
	var off []cdcRun
	for i, s := range settings {
		res[i] = cdcResult{nodes: n, setting: s}
	}
	run := 0
	for r := 0; r < o.runs; r++ {
		run++
		m, err := cdcOnce(o, filepath.Join(dir, fmt.Sprintf("cdc%d-%d", n, run)), n, nil, wh, run, r == 0, "cdc-off")
		if err != nil {
			return fmt.Errorf("CDC off, round %d: %w", r+1, err)
		}
		off = append(off, m)
		fmt.Fprintf(os.Stderr, "%d nodes, round %d, CDC off: %.0f requests/s\n", n, r+1, m.rate)
		for i, s := range settings {
			run++
			s := s
			m, err := cdcOnce(o, filepath.Join(dir, fmt.Sprintf("cdc%d-%d", n, run)), n, &s, wh, run, r == 0, fmt.Sprintf("cdc-on-%d", i+1))
			if err != nil {
				return fmt.Errorf("CDC on (%s), round %d: %w", s.name, r+1, err)
			}
			res[i].on = append(res[i].on, m)
			if !s.sends() {
				fmt.Fprintf(os.Stderr, "%d nodes, round %d, CDC on (%s): %.0f requests/s\n", n, r+1, s.name, m.rate)
				continue
			}
			fmt.Fprintf(os.Stderr, "%d nodes, round %d, CDC on (%s): %.0f requests/s, %d acknowledged, %d delivered (%d distinct indexes, %d missing, %d repeats), delay p50 %.1f ms p99 %.1f ms max %.1f ms, %d POSTs, %d entries first received after the load, the last %s after it\n",
				n, r+1, s.name, m.rate, m.acked, m.acked-m.missing, m.indexes, m.missing, m.repeats, m.delayP50, m.delayP99, m.delayMax, m.posts, m.receivedAfterEnd, m.drain.Round(time.Millisecond))
		}
	}
	for i := range res {
		res[i].off = off
	}
	*results = append(*results, res...)
	return nil
}

// cdcOnce starts a cluster (with CDC delivering to wh when s is not nil), runs the load once and stops
// the cluster.
func cdcOnce(o options, dir string, size int, s *cdcSetting, wh *webhook, run int, profile bool, profName string) (cdcRun, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cdcRun{}, err
	}
	defer os.RemoveAll(dir)
	var extra []string
	if s != nil {
		url := s.endpoint
		if s.sends() {
			url = wh.reset(run)
		}
		cfg := filepath.Join(dir, "cdc.json")
		if err := os.WriteFile(cfg, []byte(`{"endpoint":"`+url+`"`+s.json+`}`), 0o600); err != nil {
			return cdcRun{}, err
		}
		extra = []string{"-cdc-config", cfg}
	}
	c, err := startClusterQuick(o.binary, dir, size, extra...)
	if err != nil {
		return cdcRun{}, err
	}
	defer c.kill() // the data is thrown away; a graceful stop waits up to 2 s for a leadership hand-over
	leader, err := c.benchLeader()
	if err != nil {
		return cdcRun{}, err
	}
	wait := func() {}
	if profile {
		wait = profileDuring(o.profiles, leader, size, profName, o.duration)
	}
	firstID := ids.Load() + 1
	nodeCPU0, benchCPU0 := c.cpu(), selfCPU()
	m, err := runClients(32, o.duration, func(int) (int, error) { return insertOne(leader) })
	loadEnd := time.Now()
	nodeCPU1, benchCPU1 := c.cpu(), selfCPU()
	wait()
	if err != nil {
		return cdcRun{}, err
	}
	lastID := ids.Load()
	out := cdcRun{rate: m.perSecond(), p50: pct(m.lat, 0.5), p99: pct(m.lat, 0.99), acked: m.ops, firstID: firstID, lastID: lastID,
		nodeCPU: (nodeCPU1 - nodeCPU0) / float64(m.ops) * 1000, benchCPU: (benchCPU1 - benchCPU0) / float64(m.ops) * 1000}
	if int64(m.ops) != lastID-firstID+1 {
		return cdcRun{}, fmt.Errorf("%d inserts acknowledged, but ids %d..%d were used", m.ops, firstID, lastID)
	}
	if s == nil || !s.sends() {
		return out, nil
	}
	// Wait for delivery: until every acknowledged insert is in, or nothing new came for 15 s.
	wh.mu.Lock()
	wh.loadEnd = loadEnd
	wh.mu.Unlock()
	for {
		if wh.delivered() >= m.ops {
			break
		}
		wh.mu.Lock()
		last := wh.lastNew
		wh.mu.Unlock()
		if last.Before(loadEnd) {
			last = loadEnd
		}
		if time.Since(last) > 15*time.Second || time.Since(loadEnd) > 2*time.Minute {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wh.mu.Lock()
	defer wh.mu.Unlock()
	wh.decode()
	for id := firstID; id <= lastID; id++ {
		if !wh.ids[id] {
			out.missing++
		}
	}
	out.indexes = wh.benchIdx
	out.repeats, out.posts, out.receivedAfterEnd = wh.repeats, wh.posts, wh.afterEnd
	if !wh.lastNew.IsZero() && wh.lastNew.After(loadEnd) {
		out.drain = wh.lastNew.Sub(loadEnd)
	}
	d := slices.Clone(wh.delays)
	slices.Sort(d)
	if len(d) > 0 {
		out.delayP50, out.delayP99, out.delayMax = d[len(d)/2], d[min(len(d)-1, int(float64(len(d))*0.99))], d[len(d)-1]
	}
	for _, b := range wh.bad {
		fmt.Fprintln(os.Stderr, "webhook:", b)
	}
	wh.seen = nil // later POSTs of this cluster are stale
	return out, nil
}

// cpu is the CPU time, in seconds, used so far by every node process of c.
func (c *cluster) cpu() float64 {
	t := 0.0
	for _, n := range c.nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			t += procCPU(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
		}
	}
	return t
}

func selfCPU() float64 { return procCPU("/proc/self/stat") }

// procCPU reads utime+stime from a /proc stat file, in seconds (clock ticks of 1/100 s, as on Linux).
func procCPU(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// After the command: state(0) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(11) stime(12).
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

func medianOf(runs []cdcRun, f func(cdcRun) float64) float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return median(xs)
}

// pairedRatio is the median over rounds of on/off within the round: the load of a shared machine drifts
// between rounds more than within one.
func pairedRatio(r cdcResult) float64 {
	var xs []float64
	for i := range r.on {
		xs = append(xs, r.on[i].rate/r.off[i].rate)
	}
	return median(xs)
}

func reportCDC(o options, results []cdcResult) {
	if len(results) == 0 {
		return
	}
	fmt.Printf("\n### CDC off vs on: 32 clients, one insert per request; fresh cluster per run, rounds alternating off and on; medians of %d runs of %s each\n\n", o.runs, o.duration)
	fmt.Println("| nodes | CDC setting | off: requests/s | on: requests/s | on/off (of the medians; median of the rounds' own) | commit to delivery: p50 / p99 (max) | client latency off / on: p50, p99 | node CPU per 1,000 requests off / on | acknowledged, delivered, repeats (all on-runs) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		offRate, onRate := medianOf(r.off, func(x cdcRun) float64 { return x.rate }), medianOf(r.on, func(x cdcRun) float64 { return x.rate })
		acked, missing, repeats := 0, 0, 0
		for _, x := range r.on {
			acked, missing, repeats = acked+x.acked, missing+x.missing, repeats+x.repeats
		}
		delay, delivered := "-", "-"
		if r.setting.sends() {
			delay = fmt.Sprintf("%.1f / %.1f ms (%.1f ms)", medianOf(r.on, func(x cdcRun) float64 { return x.delayP50 }),
				medianOf(r.on, func(x cdcRun) float64 { return x.delayP99 }), medianOf(r.on, func(x cdcRun) float64 { return x.delayMax }))
			delivered = fmt.Sprintf("%d, %d, %d", acked, acked-missing, repeats)
		}
		fmt.Printf("| %d | %s | %.0f | %.0f | %.3f; %.3f | %s | %s, %s / %s, %s | %.3f / %.3f s | %s |\n",
			r.nodes, r.setting.name, offRate, onRate, onRate/offRate, pairedRatio(r), delay,
			ms(medianOf(r.off, func(x cdcRun) float64 { return x.p50 })), ms(medianOf(r.off, func(x cdcRun) float64 { return x.p99 })),
			ms(medianOf(r.on, func(x cdcRun) float64 { return x.p50 })), ms(medianOf(r.on, func(x cdcRun) float64 { return x.p99 })),
			medianOf(r.off, func(x cdcRun) float64 { return x.nodeCPU }), medianOf(r.on, func(x cdcRun) float64 { return x.nodeCPU }),
			delivered)
	}
	fmt.Println()
	for _, r := range results {
		fmt.Printf("- %d nodes, %s: requests/s per round, off / on:", r.nodes, r.setting.name)
		for i := range r.on {
			fmt.Printf(" %.0f / %.0f;", r.off[i].rate, r.on[i].rate)
		}
		fmt.Printf(" bench process CPU per 1,000 requests off / on: %.3f / %.3f s\n",
			medianOf(r.off, func(x cdcRun) float64 { return x.benchCPU }), medianOf(r.on, func(x cdcRun) float64 { return x.benchCPU }))
		for i, x := range r.on {
			if !r.setting.sends() {
				break
			}
			if x.missing > 0 {
				fmt.Printf("  - SHORTFALL in on-run %d: %d of %d acknowledged inserts (ids %d..%d) not delivered; %d distinct indexes delivered\n",
					i+1, x.missing, x.acked, x.firstID, x.lastID, x.indexes)
			} else if x.indexes != x.acked {
				fmt.Printf("  - on-run %d: every acknowledged insert delivered, but %d distinct indexes for %d inserts\n", i+1, x.indexes, x.acked)
			}
		}
	}
}
