package cluster

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/raftnode"
)

// ApplyConfChange (the raft node's hook, on its loop) makes raft apply a committed conf change at once (raft's own configuration), updates the
// membership and the transport's peers, and returns what the apply loop must record with the entry.
func (cl *Cluster) ApplyConfChange(rn *raft.RawNode, e *raftpb.Entry) raftnode.AppliedConf {
	cc, changes, added, err := decodeConfChange(e)
	if err != nil {
		// Every node decodes the same bytes: skipping it everywhere keeps replicas identical.
		cl.log.Error("ignoring undecodable conf change", "index", e.GetIndex(), "err", err)
		return raftnode.AppliedConf{Index: e.GetIndex(), CS: cl.members.ConfState(), Membership: cl.members.Encode()}
	}
	wasVoter := IsVoter(cl.members.ConfState(), cl.raftID)
	wasMember := wasVoter || IsLearner(cl.members.ConfState(), cl.raftID)
	cs := cl.members.ConfState()
	what := describeConfChange(cl.members, cs, changes, added)
	cancelled := false
	if err := checkConfChange(rn, cc); err != nil {
		// Not handed to raft (confcheck.go): the configuration stays as it is, on every node alike.
		cl.log.Warn("cancelling a membership change that would leave an invalid configuration", "index", e.GetIndex(), "err", err)
		changes, added, cancelled = nil, nil, true
	} else {
		cs = rn.ApplyConfChange(cc)
	}
	cl.members.apply(changes, added, cs)
	// Entries the database already held are handed out again after a restart: not news.
	replayed := e.GetIndex() <= cl.replayedUpTo
	for _, c := range changes {
		id := c.GetNodeId()
		if id == cl.raftID {
			switch {
			case replayed:
			case c.GetType() == raftpb.ConfChangeRemoveNode:
				cl.log.Warn("this node was removed from the cluster")
			case !wasVoter && IsVoter(cs, cl.raftID) && len(cs.GetVoters()) > 1:
				cl.log.Info("joined the cluster as a voter", "voters", len(cs.GetVoters()))
			}
			continue
		}
		if c.GetType() == raftpb.ConfChangeRemoveNode {
			cl.tr.RemovePeer(id)
		} else if m, ok := cl.members.Get(id); ok {
			cl.tr.SetPeer(id, m.GetNodeId(), m.GetRaftAddr())
		}
	}
	if !cancelled {
		cl.logConfChange(e.GetIndex(), what, replayed || !wasMember, cs)
	}
	cl.reportLeader()
	return raftnode.AppliedConf{Index: e.GetIndex(), CS: cs, Membership: cl.members.Encode()}
}
