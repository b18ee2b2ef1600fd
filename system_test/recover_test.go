package system_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writePeers writes a peers.json (rqlite's format) listing survivors into n's data directory.
func writePeers(t *testing.T, n *node, survivors ...*node) {
	t.Helper()
	var peers []map[string]any
	for _, s := range survivors {
		peers = append(peers, map[string]any{"id": s.id, "address": s.raftAddr, "non_voter": false})
	}
	b, _ := json.Marshal(peers)
	if err := os.WriteFile(filepath.Join(n.dir, "raft", "peers.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// voterIDs lists the voters n's /nodes reports.
func voterIDs(n *node) []string {
	var ids []string
	for id, info := range n.nodes() {
		if info["voter"] == true {
			ids = append(ids, id)
		}
	}
	return ids
}

// A cluster that lost a majority of its voters for good is brought back with peers.json: with one
// survivor, and with two of five. Every acknowledged write is there, the cluster takes writes, new nodes
// join it, and a lost node that comes back with its old data is kept out.
func TestPeersJSONRecovery(t *testing.T) {
	t.Run("one survivor of three", func(t *testing.T) {
		nodes := cluster(t, 3)
		waitLeader(t, nodes...).mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
		w := startWriters(t, nodes, 3)
		time.Sleep(time.Second)
		survivor, lost := nodes[0], nodes[1:]
		for _, n := range lost {
			n.kill()
		}
		acked := w.halt()
		survivor.stop()
		writePeers(t, survivor, survivor)
		survivor.start()
		waitLeader(t, survivor).mustExecute("CREATE TABLE after (x)")
		checkAcked(t, acked, survivor)
		t.Logf("%d acknowledged writes survived", len(acked))
		if _, err := os.Stat(filepath.Join(survivor.dir, "raft", "peers.info")); err != nil {
			t.Errorf("peers.json was not renamed to peers.info: %v", err)
		}
		if got := voterIDs(survivor); len(got) != 1 || got[0] != survivor.id {
			t.Errorf("voters after recovery: %v", got)
		}
		// A lost node that comes back with its old data belongs to the old cluster: its traffic is refused.
		lost[0].start()
		waitFor(t, lost[0].id+" to be refused", 20*time.Second, func() bool {
			b, _ := os.ReadFile(lost[0].logPath)
			return strings.Contains(string(b), "nodes of different clusters never merge")
		})
		if _, listed := survivor.nodes()[lost[0].id]; listed {
			t.Errorf("%s came back with its old data and was let in", lost[0].id)
		}
		lost[0].kill()
		// New nodes join the recovered cluster.
		fresh := newNode(t, "n4", "-join", survivor.raftAddr).start()
		waitVoters(t, []*node{survivor, fresh}, 2)
		waitConverged(t, survivor, fresh)
	})

	t.Run("refused while a quorum is reachable", func(t *testing.T) {
		nodes := cluster(t, 3)
		n := nodes[0]
		n.stop()
		writePeers(t, n, n)
		out, err := n.command().CombinedOutput()
		if err == nil || !strings.Contains(string(out), "peers.json recovery refused: 3 of the 3 voters") {
			t.Fatalf("peers.json with the whole cluster up: %v\n%s", err, out)
		}
		os.Remove(filepath.Join(n.dir, "raft", "peers.json"))
		n.start()
		waitVoters(t, nodes, 3)
		waitLeader(t, nodes...).mustExecute("CREATE TABLE still_one_cluster (x)")
		waitConverged(t, nodes...)
	})

	t.Run("two survivors of five", func(t *testing.T) {
		nodes := cluster(t, 5)
		waitLeader(t, nodes...).mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
		w := startWriters(t, nodes, 3)
		time.Sleep(time.Second)
		survivors, lost := nodes[:2], nodes[2:]
		for _, n := range lost {
			n.kill()
		}
		acked := w.halt()
		for _, n := range survivors {
			n.stop()
			writePeers(t, n, survivors...)
		}
		var wg sync.WaitGroup
		for _, n := range survivors {
			wg.Go(func() { n.start() })
		}
		wg.Wait()
		waitLeader(t, survivors...).mustExecute("CREATE TABLE after (x)")
		waitVoters(t, survivors, 2)
		checkAcked(t, acked, survivors...)
		t.Logf("%d acknowledged writes survived", len(acked))
		if got := len(survivors[0].nodes()); got != 2 {
			t.Errorf("/nodes lists %d nodes after recovery, want 2", got)
		}
	})
}
