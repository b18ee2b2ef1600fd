package system_test

import (
	"encoding/json"
	"fmt"
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

	// A slow write that finishes: while it runs, a follower's /status names it. (On a loaded machine it
	// takes longer, not shorter: timeouts here are generous, and nothing waits a fixed time.)
	slow := "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 1500000) SELECT x FROM c"
	var seen atomic.Value
	stopWatching := make(chan struct{})
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for seen.Load() == nil {
			select {
			case <-stopWatching:
				return
			default:
			}
			// On a slow machine n2 may still be applying an earlier write.
			if a, ok := n2.storeField("apply", "applying").(map[string]any); ok && a["statement"] == slow {
				seen.Store(a)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	r, err := executeWithin(n1, 2*time.Minute, slow)
	if err != nil {
		t.Fatalf("the slow write: %v", err)
	}
	waitFor(t, "n2 to apply the slow write", time.Minute, func() bool { return n2.applied() >= r.RaftIndex })
	close(stopWatching)
	<-watching
	a, _ := seen.Load().(map[string]any)
	if a == nil || a["index"] != float64(r.RaftIndex) || a["running_for"] == nil {
		t.Errorf("n2's /status store.apply.applying while the write ran: %v", a)
	}
	waitFor(t, "store.apply.applying to clear after the write", 10*time.Second, func() bool {
		return n2.storeField("apply", "applying") == nil
	})

	// A runaway write: stopped at the leader's limit on every node.
	endless := "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"
	_, err = executeWithin(n1, 2*time.Minute, endless)
	if err == nil || !strings.Contains(err.Error(), "write stopped: the request ran more than 100000000 SQLite steps") {
		t.Fatalf("the runaway write: %v", err)
	}
	n1.mustExecute("INSERT INTO t VALUES (-1)")
	waitConverged(t, nodes...)
	if n, _ := n3.count("t"); n != 1500001 {
		t.Errorf("rows on n3: %d, want 1500001 (the stopped write leaves none)", n)
	}

	// Every node logged both statements when they ended, and at least one while it ran.
	for _, n := range nodes {
		waitFor(t, n.id+" to log both slow statements", 10*time.Second, func() bool {
			got := map[any]bool{}
			for _, m := range logEvents(t, n) {
				if strings.HasPrefix(m["msg"].(string), "slow write") && m["took"] != nil {
					got[m["statement"]] = true
				}
			}
			return got[slow] && got[endless]
		})
		var running []map[string]any
		for _, m := range logEvents(t, n) {
			if strings.HasPrefix(m["msg"].(string), "still applying") {
				running = append(running, m)
			}
		}
		if len(running) == 0 || running[0]["statement"] == nil || running[0]["running_for"] == nil {
			t.Errorf("%s logged nothing while a statement ran for long: %v", n.id, running)
		}
	}
}

// executeWithin is execute with a request timeout of d, for writes that take long.
func executeWithin(n *node, d time.Duration, stmts ...any) (response, error) {
	code, body, err := n.post(fmt.Sprintf("/db/execute?raft_index&timeout=%s", d), stmts)
	if err != nil {
		return response{}, err
	}
	if code != 200 {
		return response{}, fmt.Errorf("status %d: %s", code, body)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return response{}, fmt.Errorf("decode %s: %w", body, err)
	}
	for _, res := range r.Results {
		if res.Error != "" {
			return r, fmt.Errorf("statement error: %s", res.Error)
		}
	}
	return r, nil
}
