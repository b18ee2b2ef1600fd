package store

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/confchange"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// checkConfChange reports whether raft would accept cc on top of the current configuration. Raft checks
// only that no other change is pending when a change is proposed; one that turns out invalid when it is
// applied (two concurrent removals leaving no voter) makes it panic, on every restart too, since the entry
// is committed. Every node applies the same changes in the same order, so they all decide alike.
func checkConfChange(rn *raft.RawNode, cc raftpb.ConfChangeI) error {
	cfg := rn.Status().Config
	prs := tracker.ProgressMap{}
	add := func(ids map[uint64]struct{}, learner bool) {
		for id := range ids {
			prs[id] = &tracker.Progress{IsLearner: learner}
		}
	}
	add(cfg.Voters[0], false)
	add(cfg.Voters[1], false)
	add(cfg.Learners, true)
	add(cfg.LearnersNext, true)
	changer := confchange.Changer{Tracker: tracker.ProgressTracker{Config: cfg, Progress: prs}, LastIndex: 1}
	v2 := cc.AsV2()
	var err error
	if v2.LeaveJoint() {
		_, _, err = changer.LeaveJoint()
	} else if autoLeave, ok := v2.EnterJoint(); ok {
		_, _, err = changer.EnterJoint(autoLeave, v2.GetChanges()...)
	} else {
		_, _, err = changer.Simple(v2.GetChanges()...)
	}
	return err
}

// cancelConfChange turns cc into a change raft applies as nothing: a change to node 0 is skipped (the way
// etcd rejects a change after it is committed).
func cancelConfChange(cc raftpb.ConfChangeI) raftpb.ConfChangeI {
	switch c := cc.(type) {
	case *raftpb.ConfChange:
		out := proto.Clone(c).(*raftpb.ConfChange)
		out.NodeId = new(uint64(0))
		return out
	case *raftpb.ConfChangeV2:
		out := proto.Clone(c).(*raftpb.ConfChangeV2)
		for _, ch := range out.Changes {
			ch.NodeId = new(uint64(0))
		}
		return out
	}
	return cc
}
