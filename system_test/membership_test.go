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
	for i := 0; i < 60; i++ {
		n1.mustExecute("INSERT INTO pad(b) SELECT randomblob(1<<20) FROM (SELECT 1)")
	}
	n2 := newNode(t, "n2", "-join", n1.raftAddr)
	sawLearner := false
	go n2.start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("n2 did not become ready within 60 s")
		}
		c, body := n2.readyz()
		if c == 503 && strings.Contains(body, "learner") {
			sawLearner = true
		}
		if c == 200 {
			// Readiness follows the promotion: by now the leader has it too.
			if !isVoterSeenBy(n1, "n2") {
				t.Fatalf("n2 answered /readyz with 200 but the leader does not list it as a voter")
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !sawLearner {
		t.Error("while it caught up on 60 MiB, n2's /readyz never said it was a learner")
	}
	logb, _ := os.ReadFile(n2.logPath)
	if !strings.Contains(string(logb), "joined the cluster as a voter") {
		t.Error("n2 did not log that it joined as a voter")
	}
}

// A node restarted with new addresses, the first node (which has no -join) included, updates its entry:
// the others list it, and reach it, at the new addresses within seconds.
func TestRestartAtNewAddresses(t *testing.T) {
	nodes := cluster(t, 3)
	n1 := nodes[0]
	waitLeader(t, nodes...).mustExecute("CREATE TABLE t (x)")
	n1.stop()
	n1.httpAddr, n1.raftAddr = freePort(t), freePort(t)
	n1.start()
	for _, observer := range nodes[1:] {
		waitFor(t, observer.id+" to list n1 at its new addresses", 15*time.Second, func() bool {
			got := observer.nodes()["n1"]
			return got != nil && got["addr"] == n1.raftAddr && got["api_addr"] == "http://"+n1.httpAddr && got["reachable"] == true
		})
	}
	waitFor(t, "n1 ready", 15*time.Second, func() bool { c, _ := n1.readyz(); return c == 200 })
	n1.mustExecute("INSERT INTO t VALUES (1)")
	waitConverged(t, nodes...)
}

// -join naming the node itself, in any spelling, is refused at start; a node that holds a single-node
// cluster of its own refuses to join another.
func TestJoinEdgeCases(t *testing.T) {
	n1 := newNode(t, "n1").start()
	waitLeader(t, n1)
	n1.stop()
	_, port, _ := strings.Cut(n1.httpAddr, ":")
	self := newNode(t, "n1", "-join", "http://localhost:"+port)
	self.dir, self.httpAddr, self.raftAddr = n1.dir, n1.httpAddr, n1.raftAddr
	if out, err := self.command().CombinedOutput(); err == nil || !strings.Contains(string(out), "node cannot join with itself unless bootstrapping") {
		t.Errorf("restart with -join naming itself: %v\n%s", err, out)
	}

	other := newNode(t, "n2").start()
	waitLeader(t, other)
	n1.start()
	waitLeader(t, n1)
	other.stop()
	other.flags = []string{"-join", n1.raftAddr}
	if out, err := other.command().CombinedOutput(); err == nil || !strings.Contains(string(out), "node is the only node in a single-node cluster, joining other clusters not supported") {
		t.Errorf("a single-node cluster's node started with -join: %v\n%s", err, out)
	}
}

// -raft-cluster-remove-shutdown takes the node out of the cluster when it stops, the leader too, every
// time: a 3-node cluster whose leader stops twice ends as one voter that takes writes.
func TestRemoveOnShutdownLeader(t *testing.T) {
	nodes := cluster(t, 3, "-raft-cluster-remove-shutdown")
	rest := nodes
	for want := 2; want >= 1; want-- {
		leader := waitLeader(t, rest...)
		leader.stop()
		rest = followers(leader, rest)
		waitVoters(t, rest, want)
		if _, ok := rest[0].nodes()[leader.id]; ok {
			t.Fatalf("%s is still listed after leaving", leader.id)
		}
		logb, _ := os.ReadFile(leader.logPath)
		if strings.Contains(string(logb), "could not remove this node") {
			t.Errorf("%s could not remove itself:\n%s", leader.id, logb)
		}
	}
	waitLeader(t, rest...).mustExecute("CREATE TABLE alone (x)")
	// The last node keeps the -join it was started with, naming nodes that are gone: it still runs.
	last := rest[0]
	last.stop()
	last.start()
	waitLeader(t, last).mustExecute("CREATE TABLE after_restart (x)")
}

// A removal that would leave voters without a reachable majority is refused, with the reason; the dead
// voter can be removed instead. A voter whose shutdown leaves fewer than a majority running says so.
func TestRemovalThatWouldStrandIsRefused(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	fs := followers(leader, nodes)
	live, dead := fs[0], fs[1]
	dead.kill()
	waitFor(t, "the leader to see "+dead.id+" unreachable", 10*time.Second, func() bool {
		info := leader.nodes()[dead.id]
		return info != nil && info["reachable"] == false
	})
	time.Sleep(time.Second) // and more than an election timeout since: raft no longer counts it as active
	resp, body := do(t, client, "DELETE", leader.url("/remove"), "application/json", `{"id":"`+live.id+`"}`)
	if resp.StatusCode == 200 || !strings.Contains(body, "refusing to remove "+live.id) || !strings.Contains(body, dead.id+" not reachable") {
		t.Fatalf("removing the only other reachable voter: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, client, "DELETE", leader.url("/remove"), "application/json", `{"id":"`+dead.id+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("removing the dead voter: %d %s", resp.StatusCode, body)
	}
	rest := []*node{leader, live}
	waitVoters(t, rest, 2)
	waitLeader(t, rest...).mustExecute("CREATE TABLE two (x)")
	leader = waitLeader(t, rest...)
	leader.stop()
	logb, _ := os.ReadFile(leader.logPath)
	if !strings.Contains(string(logb), "shutting down leaves fewer than a majority of the voters running") {
		t.Errorf("stopping one of two voters was not reported as leaving no majority")
	}
}
