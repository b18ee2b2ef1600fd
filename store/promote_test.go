package store

import (
	"context"
	"testing"
	"time"

	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/command"
)

// A learner that asked to vote is promoted by whichever node leads once it has caught up, even when the
// leader that accepted its join has stopped in the meantime.
func TestNewLeaderFinishesPromotion(t *testing.T) {
	nodes := threeNodes(t, nil)
	leader := leaderOf(t, nodes...)
	execSQL(t, leader, "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")

	// n4 is added as a learner while it does not run raft yet: it cannot catch up, so it stays a learner.
	n4 := &testNode{t: t, dir: t.TempDir(), addr: freeAddr(t)}
	n4.cfg = nodes[0].cfg
	n4.cfg.DataDir, n4.cfg.NodeID, n4.cfg.RaftAddr = n4.dir, "n4", n4.addr
	n4.cfg.Logger, n4.cfg.RaftLogger = testLogger(t, "n4"), raftTestLogger("n4")
	for _, n := range nodes {
		if n != leader {
			n4.cfg.Join = append(n4.cfg.Join, n.addr) // the nodes that stay
		}
	}
	n4.cfg.Listener = mustListen(t, n4.addr)
	s4, err := Open(n4.cfg)
	if err != nil {
		t.Fatal(err)
	}
	n4.s = s4
	t.Cleanup(n4.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	self := &command.Member{RaftId: s4.RaftID(), NodeId: "n4", RaftAddr: n4.addr, HttpAddr: s4.cfg.httpURL(), Voter: true}
	if err := leader.s.cluster.Join(ctx, self); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if cluster.IsVoter(leader.s.cluster.Members().ConfState(), s4.RaftID()) {
		t.Fatal("a learner that has not caught up was promoted")
	}
	if st := s4.Status(); st.Ready {
		t.Fatal("a learner reports ready")
	}

	// The leader that took the join stops; another one takes over. Then n4 starts raft and catches up.
	leader.stop()
	var rest []*testNode
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	newLeader := leaderOf(t, rest...)
	if err := s4.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n4 promoted by the new leader", 15*time.Second, func() bool {
		return cluster.IsVoter(newLeader.s.cluster.Members().ConfState(), s4.RaftID()) && s4.Status().Ready
	})
	waitRows(t, n4, "t", 1)
}
