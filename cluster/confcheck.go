package cluster

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/confchange"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Raft checks only that no other change is pending when a change is proposed; one that turns out invalid
// when it is applied (two concurrent removals leaving no voter, a simple change while the configuration
// is joint) makes it panic, on every restart too, since the entry is committed. So every conf change is
// checked before raft applies it, and an invalid one is not handed to raft at all: the configuration stays
// as it was. Every node applies the same changes in the same order, so they all decide alike.

// checkConfChange reports whether raft would accept cc on top of the node's current configuration.
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
	_, _, err := applyConf(cfg, prs, cc)
	return err
}

// applyConf applies cc to a configuration as raft would, or says why raft would refuse it.
func applyConf(cfg tracker.Config, prs tracker.ProgressMap, cc raftpb.ConfChangeI) (tracker.Config, tracker.ProgressMap, error) {
	changer := confchange.Changer{Tracker: tracker.ProgressTracker{Config: cfg, Progress: prs}, LastIndex: 1}
	v2 := cc.AsV2()
	if v2.LeaveJoint() {
		return changer.LeaveJoint()
	}
	if autoLeave, ok := v2.EnterJoint(); ok {
		return changer.EnterJoint(autoLeave, v2.GetChanges()...)
	}
	return changer.Simple(v2.GetChanges()...)
}

// replayConf applies conf change entries to the configuration cs as every node does: changes raft
// would refuse are skipped. It returns the resulting ConfState (joint, if the entries leave it joint).
func replayConf(cs *raftpb.ConfState, ents []*raftpb.Entry) (*raftpb.ConfState, error) {
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: tracker.MakeProgressTracker(1, 0), LastIndex: 1}, cs)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.GetType() != raftpb.EntryConfChange && e.GetType() != raftpb.EntryConfChangeV2 {
			continue
		}
		cc, _, _, err := decodeConfChange(e)
		if err != nil {
			continue // every node skipped it alike
		}
		if c, p, err := applyConf(cfg, prs, cc); err == nil {
			cfg, prs = c, p
		}
	}
	tr := tracker.ProgressTracker{Config: cfg, Progress: prs}
	return tr.ConfState(), nil
}
