package cluster

import (
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/raftnode"
)

// A node that joins as a voter first joins as a learner: a voter with an empty log would count toward
// the quorum before it could acknowledge anything, and a 1-voter cluster that adds a second voter which
// then takes minutes to copy the data could commit nothing meanwhile. The leader promotes learners as
// soon as they have caught up, checked on every turn of the raft loop (at most every promoteCheckEvery),
// not on a slow timer: the joining node answers /readyz with 200 only once it votes.
//
// Learners that catch up together are promoted together, in one joint-consensus change, so that three
// nodes started at once go from one voter to three without passing through two: a 2-voter cluster that
// loses either voter can elect no leader and change nothing. When promoting the learners that are ready
// would leave an even number of voters while another learner that asked to vote is still catching up,
// the leader waits up to promotePairWait for it.

const (
	// promoteCaughtUpLag is how far behind the commit index a learner may be to count as caught up.
	promoteCaughtUpLag = 16
	promoteCheckEvery  = 10 * time.Millisecond
	promotePairWait    = 3 * time.Second
)

// promotion is the raft loop's state for promotions.
type promotion struct {
	lastCheck time.Time
	// waitingSince is when learners that are ready began waiting for another to catch up.
	waitingSince time.Time
}

// Promote (the raft node's hook, every turn of its loop, on the leader) proposes the promotion of the learners that asked to vote and have
// caught up.
func (cl *Cluster) Promote(t *raftnode.Turn) {
	if !cl.members.awaitingVote() || !cl.node.IsLeader() {
		cl.promo.waitingSince = time.Time{}
		return
	}
	now := time.Now()
	if now.Sub(cl.promo.lastCheck) < promoteCheckEvery || !t.ConfChangeReady() {
		return
	}
	cl.promo.lastCheck = now
	cs := cl.members.ConfState()
	if len(cs.GetVotersOutgoing()) > 0 {
		return // a joint configuration: raft leaves it by itself first
	}
	st := t.RawNode.BasicStatus()
	if st.LeadTransferee != raft.None {
		return
	}
	var ready, catchingUp []uint64
	t.RawNode.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if typ != raft.ProgressTypeLearner {
			return
		}
		if m, ok := cl.members.Get(id); !ok || !m.GetVoter() {
			return // a read replica
		}
		switch {
		case pr.RecentActive && pr.State == tracker.StateReplicate && pr.Match+promoteCaughtUpLag >= st.GetCommit():
			ready = append(ready, id)
		case pr.RecentActive:
			catchingUp = append(catchingUp, id)
		}
	})
	if len(ready) == 0 {
		cl.promo.waitingSince = time.Time{}
		return
	}
	if (len(cs.GetVoters())+len(ready))%2 == 0 && len(catchingUp) > 0 {
		if cl.promo.waitingSince.IsZero() {
			cl.promo.waitingSince = now
		}
		if now.Sub(cl.promo.waitingSince) < promotePairWait {
			return
		}
	}
	cl.promo.waitingSince = time.Time{}
	changes := make([]*raftpb.ConfChangeSingle, 0, len(ready))
	members := make([]*command.Member, 0, len(ready))
	names := make([]string, 0, len(ready))
	for _, id := range ready {
		m, _ := cl.members.Get(id)
		changes = append(changes, change(raftpb.ConfChangeAddNode, id))
		members = append(members, m)
		names = append(names, m.GetNodeId())
	}
	cc, err := confChange(changes, members...)
	if err != nil {
		cl.log.Error("encode promotion", "err", err)
		return
	}
	if !t.ProposeConfChange(cc) {
		return // not leader any more, or a transfer began: the next check tries again
	}
	cl.log.Debug("promoting caught-up learners to voters", "nodes", names, "voters_after", len(cs.GetVoters())+len(ready))
}
