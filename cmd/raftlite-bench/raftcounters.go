package main

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// raftCounters is what one node's /metrics says of its Raft log and elections at one moment.
type raftCounters struct {
	term, leaderChanges, fsyncs, fsyncSeconds, commit, readRounds, readReads float64
}

// scrapeRaft reads n's Raft counters from /metrics.
func scrapeRaft(n *node) (raftCounters, error) {
	b, err := n.get("/metrics")
	if err != nil {
		return raftCounters{}, fmt.Errorf("metrics of %s: %w", n.http, err)
	}
	var c raftCounters
	fields := map[string]*float64{
		"raftlite_raft_term":                         &c.term,
		"raftlite_raft_leader_changes_total":         &c.leaderChanges,
		"raftlite_raft_fsync_duration_seconds_count": &c.fsyncs,
		"raftlite_raft_fsync_duration_seconds_sum":   &c.fsyncSeconds,
		"raftlite_raft_commit_index":                 &c.commit,
		"raftlite_raft_read_index_rounds_total":      &c.readRounds,
		"raftlite_raft_read_index_reads_total":       &c.readReads,
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if p := fields[name]; ok && p != nil {
			if *p, err = strconv.ParseFloat(strings.TrimSpace(value), 64); err != nil {
				return raftCounters{}, fmt.Errorf("metrics of %s: %s: %w", n.http, name, err)
			}
		}
	}
	return c, sc.Err()
}

// raftWatch holds every node's counters at the start of a measurement.
type raftWatch struct {
	nodes  []*node
	before []raftCounters
}

func watchRaft(nodes []*node) (*raftWatch, error) {
	w := &raftWatch{nodes: nodes}
	for _, n := range nodes {
		c, err := scrapeRaft(n)
		if err != nil {
			return nil, err
		}
		w.before = append(w.before, c)
	}
	return w, nil
}

// raftDelta is what changed on the nodes since watchRaft.
type raftDelta struct {
	elections     float64   // terms begun (the highest term now minus the highest before)
	leaderChanges float64   // leaders any node saw change, summed
	fsyncsPerEnt  []float64 // per node, in the order given: durable log writes per committed entry
	fsyncMean     []float64 // per node: mean seconds per durable log write (write and fsync)
}

func (w *raftWatch) delta() (raftDelta, error) {
	var d raftDelta
	var termBefore, termAfter float64
	for i, n := range w.nodes {
		after, err := scrapeRaft(n)
		if err != nil {
			return raftDelta{}, err
		}
		b := w.before[i]
		termBefore, termAfter = max(termBefore, b.term), max(termAfter, after.term)
		d.leaderChanges += after.leaderChanges - b.leaderChanges
		per := 0.0
		if entries := after.commit - b.commit; entries > 0 {
			per = (after.fsyncs - b.fsyncs) / entries
		}
		d.fsyncsPerEnt = append(d.fsyncsPerEnt, per)
		mean := 0.0
		if n := after.fsyncs - b.fsyncs; n > 0 {
			mean = (after.fsyncSeconds - b.fsyncSeconds) / n
		}
		d.fsyncMean = append(d.fsyncMean, mean)
	}
	d.elections = termAfter - termBefore
	return d, nil
}

// fsyncText shows fsyncs per committed entry of the leader (the first node given) and the others, each
// with the mean time of one durable write.
func (d raftDelta) fsyncText() string {
	parts := make([]string, len(d.fsyncsPerEnt))
	for i, v := range d.fsyncsPerEnt {
		parts[i] = fmt.Sprintf("%.3f [%.2f ms]", v, d.fsyncMean[i]*1000)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return parts[0] + " (followers " + strings.Join(parts[1:], ", ") + ")"
}
