package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/transport"
)

func TestClusterIDIsSharedAndSurvivesRestart(t *testing.T) {
	nodes := threeNodes(t, nil)
	id := nodes[0].s.Status().ClusterID
	if id == 0 {
		t.Fatal("the bootstrapped node has no cluster ID")
	}
	for _, n := range nodes[1:] {
		if got := n.s.Status().ClusterID; got != id {
			t.Errorf("%s joined with cluster ID %x, want %x", n.cfg.NodeID, got, id)
		}
	}
	n2 := nodes[1]
	n2.stop()
	n2.start()
	if got := n2.s.Status().ClusterID; got != id {
		t.Errorf("after restart %s has cluster ID %x, want %x", n2.cfg.NodeID, got, id)
	}
}

// Two independent clusters never merge: a member of one can neither join the other nor open a raft
// stream to it, even under the node-id the other knows.
func TestNodesOfAnotherClusterAreRefused(t *testing.T) {
	a := newTestNode(t, "a", nil)
	b := newTestNode(t, "b", nil)
	leaderOf(t, a)
	leaderOf(t, b)
	idA, idB := a.s.Status().ClusterID, b.s.Status().ClusterID
	if idA == 0 || idB == 0 || idA == idB {
		t.Fatalf("cluster IDs %x and %x", idA, idB)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.s.cluster.JoinThrough(ctx, a.addr)
	if err == nil || !strings.Contains(err.Error(), "never merge") {
		t.Fatalf("join of b into a's cluster: %v", err)
	}
	if got := len(a.s.Members()); got != 1 {
		t.Errorf("a's cluster has %d members after the refused join", got)
	}
	if got := b.s.Status().ClusterID; got != idB {
		t.Errorf("b's cluster ID changed to %x", got)
	}
	hello := transport.Hello{FromID: b.s.RaftID(), FromNodeID: "b", FromAddr: b.addr, FromClusterID: idB, ToID: a.s.RaftID(), ToNodeID: "a"}
	if err := (*handler)(a.s).AcceptStream(hello); err == nil || !strings.Contains(err.Error(), "never merge") {
		t.Errorf("raft stream from another cluster: %v", err)
	}
	hello.FromClusterID = idA
	if err := (*handler)(a.s).AcceptStream(hello); err != nil {
		t.Errorf("raft stream from a's own cluster: %v", err)
	}
	hello.FromClusterID = 0 // a node that belongs to no cluster yet
	if err := (*handler)(a.s).AcceptStream(hello); err != nil {
		t.Errorf("raft stream from a node in no cluster: %v", err)
	}
}
