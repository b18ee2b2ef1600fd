package system_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// A query that never ends by itself stops when its client goes away, on whichever node runs it (the
// leader, for a read a follower forwarded), and holds nothing up meanwhile: a strong read is in the log,
// but the log's apply loop does not run it, so writes go on.
func TestEndlessQueryStopsWithItsClient(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	follower := followers(leader, nodes)[0]
	leader.mustExecute("CREATE TABLE t (x)")
	endless := url.QueryEscape("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c")
	for _, tc := range []struct {
		via   *node
		level string
	}{
		{leader, "none"}, {leader, "strong"}, {follower, "weak"}, {follower, "linearizable"}, {follower, "strong"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "GET", tc.via.url("/db/query?level="+tc.level+"&q="+endless), nil)
		resp, err := client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Fatalf("an endless query at %s through %s answered: %d", tc.level, tc.via.id, resp.StatusCode)
		}
		leader.mustExecute("INSERT INTO t VALUES (1)")
		waitFor(t, "the endless query at "+tc.level+" through "+tc.via.id+" to stop", 10*time.Second, func() bool {
			return noReadsInProgress(nodes...)
		})
	}
	if n, err := leader.count("t"); err != nil || n != 5 {
		t.Fatalf("rows written meanwhile: %d %v", n, err)
	}
}

// SIGTERM stops a node cleanly even while a query that never ends runs on it: requests get some seconds to
// finish, then are cancelled, and their clients get an answer.
func TestShutdownCancelsEndlessQuery(t *testing.T) {
	n := newNode(t, "n1").start()
	waitLeader(t, n)
	answered := make(chan error, 1)
	go func() {
		resp, err := client.Get(n.url("/db/query?level=none&q=" + url.QueryEscape("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c")))
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	waitFor(t, "the query to run", 10*time.Second, func() bool { return readsInProgress(n) == 1 })
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	n.stop() // SIGKILL after 20 s
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the node did not stop cleanly: exit code %d", code)
	}
	if err := <-answered; err != nil {
		t.Errorf("the query's client got no answer: %v", err)
	}
}

// readsInProgress is what n's /status says of its read connections in use (-1 if it does not answer).
func readsInProgress(n *node) int {
	r, ok := n.storeField("sqlite3", "reads_in_progress").(float64)
	if !ok {
		return -1
	}
	return int(r)
}

func noReadsInProgress(nodes ...*node) bool {
	for _, n := range nodes {
		if readsInProgress(n) != 0 {
			return false
		}
	}
	return true
}
