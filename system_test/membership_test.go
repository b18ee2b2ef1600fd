package system_test

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyz is the node's /readyz status code and body (0 if it did not answer).
func (n *node) readyz() (int, string) {
	resp, err := n.client().Get(n.url("/readyz"))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// isVoterSeenBy reports whether observer's /status lists id as a voter.
func isVoterSeenBy(observer *node, id string) bool {
	list, _ := observer.storeField("nodes").([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && m["id"] == id {
			return m["suffrage"] == "voter"
		}
	}
	return false
}

// The quick start as a new user tries it: node 1, then nodes 2 and 3 started at the same moment with
// -join, both ready; a row written; node 1 stopped with Ctrl-C, its data directory deleted, and started
// again with its first command. Every run ends with node 1 holding the data and the cluster taking
// writes. (A join used to report ready while the node was still a learner: node 1 stopped as one of
// only two voters, or as the only one, and the cluster could never elect a leader again.)
func TestStartThenStopHeals(t *testing.T) {
	runs := 20
	if testing.Short() {
		runs = 3
	}
	for run := 1; run <= runs; run++ {
		t.Run(fmt.Sprintf("run%d", run), func(t *testing.T) { startThenStop(t) })
		if t.Failed() {
			return
		}
	}
}

func startThenStop(t *testing.T) {
	n1 := newNode(t, "1").start()
	waitFor(t, "node 1 ready", 20*time.Second, func() bool { c, _ := n1.readyz(); return c == 200 })
	n2 := newNode(t, "2", "-join", "http://"+n1.httpAddr)
	n3 := newNode(t, "3", "-join", "http://"+n1.httpAddr)
	var wg sync.WaitGroup
	wg.Go(func() { n2.start() })
	wg.Go(func() { n3.start() })
	wg.Wait()
	nodes := []*node{n1, n2, n3}
	for _, n := range []*node{n2, n3} {
		waitFor(t, n.id+" ready", 30*time.Second, func() bool {
			c, _ := n.readyz()
			if c == 200 && !isVoterSeenBy(n, n.id) {
				t.Fatalf("%s answered /readyz with 200 but is not a voter", n.id)
			}
			return c == 200
		})
	}
	n1.mustExecute("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)", []any{"INSERT INTO foo(name) VALUES(?)", "fiona"})
	n1.signal(syscall.SIGINT)
	if err := os.RemoveAll(n1.dir); err != nil {
		t.Fatal(err)
	}
	n1.start()
	waitFor(t, "node 1 to take writes with the data back", 30*time.Second, func() bool {
		if _, err := n1.execute([]any{"INSERT INTO foo(name) VALUES(?)", "after"}); err != nil {
			return false
		}
		return true
	})
	waitFor(t, "node 1 to hold both rows", 10*time.Second, func() bool {
		c, err := n1.count("foo")
		return err == nil && c >= 2
	})
	dump := waitConverged(t, nodes...)
	if !strings.Contains(dump, "fiona") {
		t.Fatalf("the first row is gone:\n%s", dump)
	}
	waitVoters(t, nodes, 3)
}

// A joining voter answers /readyz with 200 only once it votes: until the leader promotes it, it says
// why it is not ready.
func TestJoiningVoterIsReadyOnlyOnceItVotes(t *testing.T) {
	n1 := newNode(t, "n1").start()
	waitLeader(t, n1)
	// Enough data that the new node takes a moment to catch up.
	n1.mustExecute("CREATE TABLE pad (b BLOB)")
	for i := 0; i < 20; i++ {
		n1.mustExecute("INSERT INTO pad(b) SELECT randomblob(1<<20) FROM (SELECT 1)")
	}
	n2 := newNode(t, "n2", "-join", n1.raftAddr)
	sawLearner := false
	go n2.start()
	waitFor(t, "n2 ready", 60*time.Second, func() bool {
		c, body := n2.readyz()
		if c == 503 && strings.Contains(body, "learner") {
			sawLearner = true
		}
		if c == 200 && !isVoterSeenBy(n2, "n2") {
			t.Fatalf("n2 answered /readyz with 200 but is not a voter")
		}
		return c == 200
	})
	t.Logf("readyz said the learner was catching up: %v", sawLearner)
	if !isVoterSeenBy(n1, "n2") {
		t.Error("the leader does not list n2 as a voter once n2 is ready")
	}
	logb, _ := os.ReadFile(n2.logPath)
	if !strings.Contains(string(logb), "joined the cluster as a voter") {
		t.Error("n2 did not log that it joined as a voter")
	}
}
