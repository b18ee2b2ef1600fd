package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// The comparison (-compare BINARY): the same scenarios against raftlited and against another server that
// speaks rqlite's HTTP API and takes rqlite's flags (rqlited v10), each a fresh 3-node loopback cluster,
// alternating A B A B for -runs rounds, then the median of each and the ratio raftlite / other. Both
// clusters start with the same flags (-node-id, -http-addr, -raft-addr, -join with the first node's Raft
// address, the data directory), which both programs take.

type compareScenario struct {
	name        string
	lowerBetter bool // a latency: the ratio should be below 1
	run         func(o options, leader *node, firstID int64) (float64, error)
}

var compareScenarios = []compareScenario{
	{"1 client, one insert per request: p50 latency (ms)", true, func(o options, l *node, _ int64) (float64, error) {
		lat := make([]time.Duration, 0, o.serial)
		for i := 0; i < o.serial; i++ {
			start := time.Now()
			if _, err := insertOne(l); err != nil {
				return 0, err
			}
			lat = append(lat, time.Since(start))
		}
		return pct(lat, 0.5) / 1e6, nil
	}},
	{"32 clients, one insert per request: requests/s", false, func(o options, l *node, _ int64) (float64, error) {
		m, err := runClients(32, o.duration, func(int) (int, error) { return insertOne(l) })
		return m.perSecond(), err
	}},
	{"4 clients, 100-statement requests: statements/s", false, func(o options, l *node, _ int64) (float64, error) {
		m, err := runClients(4, o.duration, func(int) (int, error) { return insertBatch(l) })
		return m.stmtsPerSecond(), err
	}},
	{"16 clients, level none reads on the leader: reads/s", false, func(o options, l *node, first int64) (float64, error) {
		last := ids.Load()
		m, err := runClients(16, o.duration, func(int) (int, error) { return readOne(l, "none", first, last) })
		return m.perSecond(), err
	}},
	{"16 clients, linearizable reads on the leader: reads/s", false, func(o options, l *node, first int64) (float64, error) {
		last := ids.Load()
		m, err := runClients(16, o.duration, func(int) (int, error) { return readOne(l, "linearizable", first, last) })
		return m.perSecond(), err
	}},
	{"16 clients, strong reads on the leader: reads/s", false, func(o options, l *node, first int64) (float64, error) {
		last := ids.Load()
		m, err := runClients(16, o.duration, func(int) (int, error) { return readOne(l, "strong", first, last) })
		return m.perSecond(), err
	}},
}

type contender struct{ name, binary string }

func measureComparison(o options, dir string) error {
	both := []contender{{"raftlite", o.binary}, {"other", o.compare}}
	values := map[string]map[string][]float64{} // scenario, contender: one value per round
	for r := 0; r < o.runs; r++ {
		for _, c := range both {
			if err := compareRound(o, filepath.Join(dir, fmt.Sprintf("compare-%s-%d", c.name, r)), c, values); err != nil {
				return fmt.Errorf("%s, round %d: %w", c.name, r+1, err)
			}
		}
	}
	reportComparison(o, values)
	return nil
}

// compareRound starts a fresh 3-node cluster of c, runs every scenario once, and stops it.
func compareRound(o options, dir string, c contender, values map[string]map[string][]float64) error {
	cl, err := startPlainCluster(c.binary, dir, 3)
	if err != nil {
		return err
	}
	defer cl.stop()
	leader, err := cl.benchLeader()
	if err != nil {
		return err
	}
	firstID := ids.Load() + 1
	for _, s := range compareScenarios {
		if strings.Contains(s.name, "reads") && ids.Load() < firstID+1000 {
			if err := seedRows(leader, 1000); err != nil {
				return err
			}
		}
		v, err := s.run(o, leader, firstID)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if values[s.name] == nil {
			values[s.name] = map[string][]float64{}
		}
		values[s.name][c.name] = append(values[s.name][c.name], v)
	}
	return nil
}

// startPlainCluster starts size nodes with only the flags raftlited and rqlited share; the others join
// through the first node's Raft address, as rqlited requires.
func startPlainCluster(binary, dir string, size int) (*cluster, error) {
	return startInTurn(dir, size, func(i int, c *cluster) (*node, error) {
		n, err := newBareNode(binary, dir, i)
		if err != nil {
			return nil, err
		}
		if i > 1 {
			n.args = append(n.args, "-join", c.nodes[0].raft)
		}
		n.args = append(n.args, n.dir)
		return n, nil
	})
}

func reportComparison(o options, values map[string]map[string][]float64) {
	fmt.Printf("\n## raftlite-bench -compare %s, %s\n\n", o.compare, time.Now().UTC().Format("2006-01-02"))
	fmt.Printf("3-node loopback clusters, fresh for each round, raftlite and the other alternating; medians of %d rounds (%s runs, one-client runs: %d inserts)\n\n",
		o.runs, o.duration, o.serial)
	fmt.Println("| scenario | raftlite | other | raftlite / other |")
	fmt.Println("|---|---|---|---|")
	for _, s := range compareScenarios {
		a, b := median(values[s.name]["raftlite"]), median(values[s.name]["other"])
		ratio := "-"
		if b > 0 {
			ratio = fmt.Sprintf("%.2fx", a/b)
		}
		fmt.Printf("| %s | %s | %s | %s |\n", s.name, compareValue(a), compareValue(b), ratio)
	}
	var none, lin string
	for _, s := range compareScenarios {
		switch {
		case strings.Contains(s.name, "level none"):
			none = s.name
		case strings.Contains(s.name, "linearizable"):
			lin = s.name
		}
	}
	for _, who := range []string{"raftlite", "other"} {
		if n := median(values[none][who]); n > 0 {
			fmt.Printf("\n%s: linearizable reads are %.0f%% of level none on the leader", who, 100*median(values[lin][who])/n)
		}
	}
	fmt.Println()
	for _, s := range compareScenarios {
		fmt.Printf("\nper round, %s: raftlite %s; other %s", s.name, roundValues(values[s.name]["raftlite"]), roundValues(values[s.name]["other"]))
	}
	fmt.Println()
}

func compareValue(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func roundValues(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = compareValue(v)
	}
	return strings.Join(parts, " / ")
}
