package store

import (
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/raftlite/raftlite/command"
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

// promotion is the raft loop's state for promotions and the conf changes raft has in flight.
type promotion struct {
	// confPending is the index of the last conf change raft may still have pending (or, after an election,
	// the last index of the log): raft ignores a conf change proposed before the entries up to it are
	// handed to the apply loop, and turns it into an empty entry. handed is the last committed index handed on.
	confPending uint64
	handed      uint64
	lastCheck   time.Time
	// waitingSince is when learners that are ready began waiting for another to catch up.
	waitingSince time.Time
}

// noteReady records, from one Ready, the conf changes appended and the entries handed on.
func (p *promotion) noteReady(rd *raft.Ready, becameLeader bool, lastIndex uint64) {
	for _, e := range rd.Entries {
		if e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2 {
			p.confPending = max(p.confPending, e.GetIndex())
		}
	}
	if becameLeader {
		// raft itself refuses conf changes until everything in the new leader's log is applied.
		p.confPending = max(p.confPending, lastIndex)
	}
	if n := len(rd.CommittedEntries); n > 0 {
		p.handed = rd.CommittedEntries[n-1].GetIndex()
	}
}

// maybePromote (raft loop, leader) proposes the promotion of the learners that asked to vote and have
// caught up.
func (s *Store) maybePromote(l *raftLoop) {
	if !s.members.awaitingVote() || raft.StateType(s.raftState.Load()) != raft.StateLeader {
		l.promo.waitingSince = time.Time{}
		return
	}
	now := time.Now()
	if now.Sub(l.promo.lastCheck) < promoteCheckEvery || l.promo.handed < l.promo.confPending {
		return
	}
	l.promo.lastCheck = now
	cs := s.members.confState()
	if len(cs.GetVotersOutgoing()) > 0 {
		return // a joint configuration: raft leaves it by itself first
	}
	st := l.rn.BasicStatus()
	if st.LeadTransferee != raft.None {
		return
	}
	var ready, catchingUp []uint64
	l.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if typ != raft.ProgressTypeLearner {
			return
		}
		if m, ok := s.members.get(id); !ok || !m.GetVoter() {
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
		l.promo.waitingSince = time.Time{}
		return
	}
	if (len(cs.GetVoters())+len(ready))%2 == 0 && len(catchingUp) > 0 {
		if l.promo.waitingSince.IsZero() {
			l.promo.waitingSince = now
		}
		if now.Sub(l.promo.waitingSince) < promotePairWait {
			return
		}
	}
	l.promo.waitingSince = time.Time{}
	changes := make([]*raftpb.ConfChangeSingle, 0, len(ready))
	members := make([]*command.Member, 0, len(ready))
	names := make([]string, 0, len(ready))
	for _, id := range ready {
		m, _ := s.members.get(id)
		changes = append(changes, change(raftpb.ConfChangeAddNode, id))
		members = append(members, m)
		names = append(names, m.GetNodeId())
	}
	cc, err := confChange(changes, members...)
	if err != nil {
		s.log.Error("encode promotion", "err", err)
		return
	}
	if err := l.rn.ProposeConfChange(cc); err != nil {
		return // not leader any more, or a transfer began: the next check tries again
	}
	// The entry is appended in the coming Ready; until it is applied, nothing more is proposed.
	l.promo.confPending = max(l.promo.confPending, s.lastIndex.Load()+1)
	s.log.Info("promoting caught-up learners to voters", "nodes", names, "voters_after", len(cs.GetVoters())+len(ready))
}
