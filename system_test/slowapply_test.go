package system_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A write that runs long while it is applied is visible: /status shows the statement and how long it has
// run, and the log has it with its duration, while it runs and when it ends. A runaway write is stopped at
// the leader's -apply-step-limit on every node alike (the followers run with the default): the nodes stay
// identical, and writes go on.
func TestSlowAndRunawayWrites(t *testing.T) {
	common := []string{"-log-format", "json", "-apply-slow-threshold", "200ms"}
	n1 := newNode(t, "n1", append([]string{"-apply-step-limit", "100000000"}, common...)...).start()
	waitLeader(t, n1)
	n2 := newNode(t, "n2", append([]string{"-join", n1.httpAddr}, common...)...).start()
	n3 := newNode(t, "n3", append([]string{"-join", n1.httpAddr}, common...)...).start()
	nodes := []*node{n1, n2, n3}
	waitVoters(t, nodes, 3)
	n1.mustExecute("CREATE TABLE t (x)")
	if got := n2.storeField("apply", "step_limit"); got != float64(1e10) {
		t.Fatalf("n2's /status store.apply.step_limit: %v, want the default 1e10", got)
	}

	// A slow write that finishes: while it runs, a follower's /status names it.
	slow := "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 1500000) SELECT x FROM c"
	var seen atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 400 && seen.Load() == nil; i++ {
			if a, ok := n2.storeField("apply", "applying").(map[string]any); ok {
				seen.Store(a)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	start := time.Now()
	n1.mustExecute(slow)
	took := time.Since(start)
	<-done
	a, _ := seen.Load().(map[string]any)
	if a == nil || a["statement"] != slow || a["index"] == nil || a["running_for"] == nil {
		t.Errorf("n2's /status store.apply.applying while the write ran (%s): %v", took, a)
	}
	if got := n2.storeField("apply", "applying"); got != nil {
		t.Errorf("store.apply.applying after the write: %v", got)
	}

	// A runaway write: stopped at the leader's limit on every node.
	endless := "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"
	_, err := n1.execute(endless)
	if err == nil || !strings.Contains(err.Error(), "write stopped: the request ran more than 100000000 SQLite steps") {
		t.Fatalf("the runaway write: %v", err)
	}
	n1.mustExecute("INSERT INTO t VALUES (-1)")
	dump := waitConverged(t, nodes...)
	if n, _ := n3.count("t"); n != 1500001 {
		t.Errorf("rows on n3: %d, want 1500001 (the stopped write leaves none)", n)
	}
	_ = dump

	time.Sleep(300 * time.Millisecond)
	for _, n := range nodes {
		lines := logEvents(t, n)
		var ended, running []map[string]any
		for _, m := range lines {
			switch {
			case strings.HasPrefix(m["msg"].(string), "slow write"):
				ended = append(ended, m)
			case strings.HasPrefix(m["msg"].(string), "still applying"):
				running = append(running, m)
			}
		}
		if len(ended) != 2 || ended[0]["statement"] != slow || ended[1]["statement"] != endless || ended[0]["took"] == nil {
			t.Errorf("%s's slow-write lines: %v", n.id, ended)
		}
		if len(running) == 0 || running[0]["statement"] == nil || running[0]["running_for"] == nil {
			t.Errorf("%s logged nothing while a statement ran for long: %v", n.id, running)
		}
	}
}
