package system_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestClusterFormsAndReplicates(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)")
	leader.mustExecute([]any{"INSERT INTO foo(name) VALUES(?)", "on leader"})
	f := followers(leader, nodes)[0]
	r := f.mustExecute([]any{"INSERT INTO foo(name) VALUES(:name)", map[string]any{"name": "on follower"}})
	if r.RaftIndex == 0 {
		t.Error("a forwarded write did not return its raft index")
	}
	dump := waitConverged(t, nodes...)
	for _, want := range []string{"'on leader'", "'on follower'"} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump lacks %s:\n%s", want, dump)
		}
	}
	for _, n := range nodes {
		res, err := n.query("SELECT name FROM foo ORDER BY id", "linearizable")
		if err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
		if len(res.Values) != 2 {
			t.Errorf("%s: linearizable read saw %v", n.id, res.Values)
		}
	}
}

// writer inserts rows with unique ids through random nodes and records which were acknowledged.
type writer struct {
	next  atomic.Int64
	mu    sync.Mutex
	acked map[int64]time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startWriters(t *testing.T, nodes []*node, clients int) *writer {
	w := &writer{acked: map[int64]time.Time{}, stop: make(chan struct{})}
	for c := 0; c < clients; c++ {
		w.wg.Go(func() {
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				id := w.next.Add(1)
				n := nodes[rand.IntN(len(nodes))]
				if _, err := n.execute([]any{"INSERT INTO acked(id) VALUES(?)", id}); err == nil {
					w.mu.Lock()
					w.acked[id] = time.Now()
					w.mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return w
}

// snapshot returns the writes acknowledged so far.
func (w *writer) snapshot() map[int64]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int64]time.Time, len(w.acked))
	for id, at := range w.acked {
		out[id] = at
	}
	return out
}

func (w *writer) halt() map[int64]time.Time {
	close(w.stop)
	w.wg.Wait()
	return w.acked
}

// checkAcked asserts every acknowledged id is on every node.
func checkAcked(t *testing.T, acked map[int64]time.Time, nodes ...*node) {
	t.Helper()
	dump := waitConverged(t, nodes...)
	for id := range acked {
		if !strings.Contains(dump, fmt.Sprintf("INSERT INTO \"acked\" VALUES(%d);", id)) {
			t.Errorf("acknowledged write %d is missing", id)
		}
	}
}

func TestKillLeaderUnderWrites(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	w := startWriters(t, nodes, 8)
	time.Sleep(time.Second)
	killedAt := time.Now()
	leader.kill()
	rest := followers(leader, nodes)
	newLeader := waitLeader(t, rest...)
	t.Logf("new leader %s elected %s after the kill", newLeader.id, time.Since(killedAt))
	time.Sleep(2 * time.Second)
	leader.start()
	time.Sleep(time.Second)
	acked := w.halt()
	after := 0
	for _, at := range acked {
		if at.After(killedAt) {
			after++
		}
	}
	t.Logf("%d writes acknowledged, %d after the leader was killed", len(acked), after)
	if after == 0 {
		t.Error("no write was acknowledged after the leader was killed")
	}
	checkAcked(t, acked, nodes...)
}

func TestRestartCatchesUpFromLogAndSnapshot(t *testing.T) {
	nodes := cluster(t, 3, "-raft-snap", "50", "-raft-snap-int", "200ms")
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	victim := followers(leader, nodes)[0]

	// From the log: a short absence.
	victim.kill()
	for i := 1; i <= 20; i++ {
		leader.mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", i})
	}
	victim.start()
	waitConverged(t, nodes...)

	// From a snapshot: long enough for the leader to compact past the victim's position.
	victim.kill()
	for i := 21; i <= 400; i++ {
		leader.mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", i})
	}
	waitFor(t, "compaction on the leader", 10*time.Second, func() bool {
		f, _ := leader.storeField("raft", "first_log_index").(float64)
		return f > 30
	})
	victim.start()
	dump := waitConverged(t, nodes...)
	if strings.Count(dump, "INSERT INTO \"acked\"") != 400 {
		t.Errorf("expected 400 rows after catch-up")
	}
	logb, _ := os.ReadFile(victim.logPath)
	if !strings.Contains(string(logb), "installed snapshot from leader") {
		t.Error("the victim caught up without installing a snapshot; the test did not exercise that path")
	}
}

func TestWholeClusterRestartKeepsData(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	for i := 1; i <= 50; i++ {
		leader.mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", i})
	}
	before := waitConverged(t, nodes...)
	for _, n := range nodes {
		n.stop()
	}
	for _, n := range nodes {
		n.start()
	}
	waitLeader(t, nodes...)
	after := waitConverged(t, nodes...)
	if after != before {
		t.Errorf("data changed across a full restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	waitLeader(t, nodes...).mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", 51})
}

func TestWipedNodesComeBack(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	for i := 1; i <= 30; i++ {
		leader.mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", i})
	}
	// Every node in turn, the first one (started with no -join) included: stop, delete the data
	// directory, start with the very same command.
	for _, victim := range nodes {
		victim.kill()
		if err := os.RemoveAll(victim.dir); err != nil {
			t.Fatal(err)
		}
		victim.start()
		dump := waitConverged(t, nodes...)
		if strings.Count(dump, "INSERT INTO \"acked\"") != 30 {
			t.Fatalf("after wiping %s: rows missing", victim.id)
		}
		waitVoters(t, nodes, 3)
		waitLeader(t, nodes...).mustExecute("CREATE TABLE IF NOT EXISTS after_" + victim.id + " (x)")
	}
	if got := len(nodes[0].nodes()); got != 3 {
		t.Errorf("/nodes lists %d nodes, want 3 (old identities must be gone)", got)
	}
	sameClusterID(t, nodes...) // the wiped nodes learned it again when they rejoined
}

func TestNonVoterReceivesDataAndDoesNotVote(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	leader.mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", 1})
	// Join through a follower's Raft address.
	replica := newNode(t, "r1", "-raft-non-voter", "-join", followers(leader, nodes)[0].raftAddr).start()
	waitFor(t, "data on the read replica", 20*time.Second, func() bool {
		c, err := replica.count("acked")
		return err == nil && c == 1
	})
	info := leader.nodes()["r1"]
	if info == nil || info["voter"] != false {
		t.Fatalf("/nodes entry of the replica: %v", info)
	}
	// With two of three voters gone, the remaining voter and the replica cannot elect a leader: the
	// replica does not vote.
	remaining := nodes[0]
	for _, n := range nodes[1:] {
		n.kill()
	}
	time.Sleep(3 * time.Second)
	if remaining.isLeader() || replica.isLeader() {
		t.Fatal("a leader was elected without a quorum of voters")
	}
	if _, err := remaining.execute([]any{"INSERT INTO acked(id) VALUES(?)", 2}); err == nil {
		t.Fatal("a write was acknowledged without a quorum of voters")
	}
}

func TestRemoveNode(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	victim := followers(leader, nodes)[1]
	req, _ := httpDelete(leader.url("/remove"), `{"id":"`+victim.id+`"}`)
	if req != 200 {
		t.Fatalf("DELETE /remove: status %d", req)
	}
	victim.kill()
	rest := followers(victim, nodes)
	waitVoters(t, rest, 2)
	waitLeader(t, rest...).mustExecute("CREATE TABLE after_remove (x)")
	for _, bad := range []string{`{}`, `{"id":"n1","x":1}`, `not json`, `{"id":7}`} {
		if code, _ := httpDelete(leader.url("/remove"), bad); code != 400 {
			t.Errorf("DELETE /remove %s: status %d, want 400", bad, code)
		}
	}
}

// Joining again with the same id and address changes nothing; a changed address replaces the old one.
func TestRejoinAndAddressChange(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	n3 := nodes[2]
	n3.stop()
	n3.start() // same command, same -join: no membership change
	waitVoters(t, nodes, 3)
	time.Sleep(500 * time.Millisecond)
	if got := leader.nodes()["n3"]; got == nil || got["addr"] != n3.raftAddr {
		t.Fatalf("n3 after rejoin: %v", got)
	}
	if got := len(leader.nodes()); got != 3 {
		t.Fatalf("%d nodes after rejoining with the same command, want 3", got)
	}
	// A new Raft address for n3: the entry follows it.
	n3.stop()
	n3.raftAddr = freePort(t)
	n3.start()
	waitFor(t, "the new address of n3", 20*time.Second, func() bool {
		got := leader.nodes()["n3"]
		return got != nil && got["addr"] == n3.raftAddr && got["reachable"] == true
	})
	leader.mustExecute("CREATE TABLE after_move (x)")
	waitConverged(t, nodes...)
}

func TestBootstrapExpect(t *testing.T) {
	var nodes []*node
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, newNode(t, fmt.Sprintf("b%d", i)))
	}
	var joins []string
	for _, n := range nodes {
		joins = append(joins, n.raftAddr)
	}
	for _, n := range nodes {
		n.flags = []string{"-bootstrap-expect", "3", "-join", strings.Join(joins, ",")}
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.start() })
	}
	wg.Wait()
	waitVoters(t, nodes, 3)
	waitLeader(t, nodes...).mustExecute("CREATE TABLE formed (x)")
	waitConverged(t, nodes...)
	sameClusterID(t, nodes...)
}

// sameClusterID checks that every node reports one, non-empty cluster ID, and returns it.
func sameClusterID(t *testing.T, nodes ...*node) string {
	t.Helper()
	id, _ := nodes[0].storeField("cluster_id").(string)
	if id == "" {
		t.Fatalf("%s reports no cluster ID", nodes[0].id)
	}
	for _, n := range nodes[1:] {
		if got := n.storeField("cluster_id"); got != id {
			t.Fatalf("%s reports cluster ID %v, %s reports %s", n.id, got, nodes[0].id, id)
		}
	}
	return id
}

// A first node (started with no -join) that lost its data and came back while none of its peers could
// reach it has no way to know it ever had a cluster: after the grace period it bootstraps a new one. The
// old members must then refuse it, not join it (its log would overwrite theirs), go on without it, and
// keep every row; the node says loudly what happened.
func TestWipedFirstNodeAloneNeverMergesClusters(t *testing.T) {
	nodes := cluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	oldCluster := sameClusterID(t, nodes...)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	for i := 1; i <= 20; i++ {
		leader.mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", i})
	}
	waitConverged(t, nodes...)
	for _, n := range nodes {
		n.kill()
	}
	if err := os.RemoveAll(n1.dir); err != nil {
		t.Fatal(err)
	}
	n1.start()
	waitLeader(t, n1) // alone, after the grace period: a new cluster
	newCluster := sameClusterID(t, n1)
	if newCluster == oldCluster {
		t.Fatalf("the wiped node's new cluster has the old cluster's ID %s", oldCluster)
	}
	n1.mustExecute("CREATE TABLE written_to_the_new_cluster (x)")

	n2.start() // the old members dial n1, a member to them, which must not take them
	n3.start()
	old := []*node{n2, n3}
	waitLeader(t, old...).mustExecute([]any{"INSERT INTO acked(id) VALUES(?)", 21})
	for _, n := range old {
		waitFor(t, "all rows on "+n.id, 20*time.Second, func() bool {
			c, err := n.count("acked")
			return err == nil && c == 21
		})
		if got := n.storeField("cluster_id"); got != oldCluster {
			t.Errorf("%s is in cluster %v, want %s", n.id, got, oldCluster)
		}
		if got := len(n.nodes()); got != 3 {
			t.Errorf("%s lists %d nodes, want 3 (n1's old identity stays until an operator removes it)", n.id, got)
		}
	}
	waitFor(t, "n1 to refuse the old cluster's traffic", 20*time.Second, func() bool {
		// Whichever of n2 and n3 leads sends raft traffic to n1, still a member to them.
		for _, n := range old {
			if b, _ := os.ReadFile(n.logPath); strings.Contains(string(b), "nodes of different clusters never merge") {
				return true
			}
		}
		return false
	})
	if got := len(n1.nodes()); got != 1 {
		t.Errorf("the new cluster lists %d nodes, want 1: %v", got, n1.nodes())
	}
	if _, err := n1.count("acked"); err == nil {
		t.Error("the old cluster's table reached the new cluster")
	}
	waitFor(t, "n1 to report the other cluster", 10*time.Second, func() bool {
		b, _ := os.ReadFile(n1.logPath)
		return strings.Contains(string(b), "another cluster still counts this node-id as a member")
	})
}

func TestGracefulLeaderShutdownHandsOver(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	start := time.Now()
	leader.stop()
	rest := followers(leader, nodes)
	waitLeader(t, rest...)
	// Without a handover the others would wait at least an election timeout before even campaigning.
	t.Logf("new leader within %s of a graceful shutdown", time.Since(start))
	logb, _ := os.ReadFile(leader.logPath)
	if strings.Contains(string(logb), "could not hand leadership over") {
		t.Error("the leader did not hand leadership over")
	}
}

func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing required argument"},
		{[]string{"-no-such-flag", "d"}, "flag provided but not defined"},
		{[]string{"-http-addr", "localhost:5001", "-raft-addr", "localhost:5001", "d"}, "HTTP and Raft addresses must differ"},
		{[]string{"-http-addr", "http://localhost:5001", "d"}, "should not include protocol"},
		{[]string{"-bootstrap-expect", "3", "-raft-non-voter", "d"}, "bootstrapping only applicable to voting nodes"},
		{[]string{"d1", "d2"}, "arguments after data directory"},
		{[]string{"-raft-snap-int", "soon", "d"}, "invalid value"},
		{[]string{"-http-cert", "c.pem", "d"}, "either both -http-cert and -http-key must be set, or neither"},
		{[]string{"-http-cert", "c.pem", "-http-key", "k.pem", "-http-verify-client", "d"}, "-http-verify-client needs -http-ca-cert"},
		{[]string{"-http-addr", "0.0.0.0:5001", "d"}, "advertised HTTP address is not routable (0.0.0.0), specify it via -http-addr or -http-adv-addr"},
		{[]string{"-raft-addr", ":5002", "d"}, "advertised Raft address is not routable (no host), specify it via -raft-addr or -raft-adv-addr"},
		{[]string{"-raft-addr", "[::]:5002", "-raft-adv-addr", "[::]:5002", "d"}, "advertised Raft address is not routable (::)"},
		{[]string{"-join", "http://127.0.0.1:4001", "d"}, "node cannot join with itself unless bootstrapping"},
		{[]string{"-join-as", "bob", "d"}, "-auth is needed too"},
		{[]string{"-auth", "/nonexistent/auth.json", "d"}, "read credentials file"},
		{[]string{"-log-format", "xml", "d"}, "-log-format"},
		{[]string{"-raft-log-level", "ERROR+4", "d"}, "unknown level"},
		{[]string{"-query-max-result", "-1", "d"}, "-query-max-result not negative"},
	} {
		out, err := exec.Command(raftlitedBin, tc.args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: exit status 0", tc.args)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: output %q lacks %q", tc.args, out, tc.want)
		}
	}
}

// Non-deterministic SQL, sent to different nodes, leaves identical rows everywhere, and the times are
// right.
func TestNonDeterministicSQLIsIdenticalOnEveryNode(t *testing.T) {
	// Machines in different time zones: 'localtime' must not tell them apart.
	first := newNode(t, "n1")
	first.env = []string{"TZ=America/New_York"}
	first.start()
	waitLeader(t, first)
	nodes := []*node{first}
	for i, tz := range []string{"Asia/Tokyo", "Europe/Paris"} {
		n := newNode(t, fmt.Sprintf("n%d", i+2), "-join", first.httpAddr)
		n.env = []string{"TZ=" + tz}
		nodes = append(nodes, n.start())
	}
	waitVoters(t, nodes, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE nd (id INTEGER PRIMARY KEY, r INTEGER, b BLOB, t TEXT, c TEXT, d TEXT DEFAULT CURRENT_TIMESTAMP, l TEXT DEFAULT (datetime('now', 'localtime')))")
	before := time.Now().UTC().Add(-time.Second)
	for i, n := range nodes {
		n.mustExecute([]any{"INSERT INTO nd(id, r, b, t, c) VALUES(?, random(), randomblob(16), datetime('now'), CURRENT_TIMESTAMP)", i + 1})
	}
	after := time.Now().UTC().Add(time.Second)
	dump := waitConverged(t, nodes...)
	if strings.Count(dump, "INSERT INTO \"nd\"") != 3 {
		t.Fatalf("rows missing:\n%s", dump)
	}
	res, err := leader.query("SELECT t, c, d, l FROM nd", "strong")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range res.Values {
		for _, v := range row {
			ts, err := time.Parse(time.RFC3339, v.(string))
			if err != nil {
				ts, err = time.Parse("2006-01-02 15:04:05", v.(string))
			}
			if err != nil || ts.Before(before.Truncate(time.Second)) || ts.After(after) {
				t.Errorf("time %v is not the time of the insert (%v..%v): %v", v, before, after, err)
			}
		}
	}
}

func TestRemoveOnShutdown(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	leaving := followers(leader, nodes)[0]
	leaving.stop()
	leaving.flags = append(leaving.flags, "-raft-cluster-remove-shutdown")
	leaving.start()
	waitVoters(t, nodes, 3)
	leaving.stop()
	rest := followers(leaving, nodes)
	waitVoters(t, rest, 2)
	if _, ok := leader.nodes()[leaving.id]; ok {
		t.Errorf("%s is still listed after leaving", leaving.id)
	}
}
