package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/nodecall"
	"github.com/raftlite/raftlite/raftnode"
)

// selfMember is this node's record as it started: the membership should hold exactly this.
func (cl *Cluster) selfMember() *command.Member {
	return &command.Member{RaftId: cl.raftID, NodeId: cl.cfg.NodeID, RaftAddr: cl.cfg.RaftAddr, HttpAddr: cl.cfg.HTTPURL, Voter: cl.cfg.Voter}
}

// Join adds m to the cluster, or updates it. On a follower the call is passed to the leader. Rules:
// the same Raft ID with the same addresses and suffrage changes nothing; a changed address or suffrage
// updates the entry; a known node-id (or Raft address) under a new Raft ID is a node that lost its data:
// the old identity is removed and the new one added, in one change, once the old one has gone quiet. New
// members join as learners and voters are promoted once they have caught up.
func (cl *Cluster) Join(ctx context.Context, m *command.Member) error {
	if m.GetRaftId() == 0 || m.GetNodeId() == "" || m.GetRaftAddr() == "" {
		return errors.New("join request lacks raft id, node id or address")
	}
	if !cl.node.IsLeader() {
		_, err := cl.calls.CallLeader(ctx, nodecall.Join, &command.JoinRequest{Member: m})
		return err
	}
	var applied *raftpb.ConfChangeV2
	for {
		cc, err := cl.joinChange(m)
		if err != nil || cc == nil {
			if err == nil && applied == nil {
				cl.counts.ignoredJoins.Add(1) // the membership held m already
			}
			return err
		}
		if applied != nil && proto.Equal(cc, applied) {
			// Committed, yet the membership does not hold m: every node cancelled the change (confcheck.go).
			return fmt.Errorf("the Membership change for %s was cancelled: it would have left an invalid configuration", m.GetNodeId())
		}
		err = cl.proposeConfChange(ctx, cc)
		if err == nil {
			applied = cc
			for _, c := range cc.GetChanges() {
				if c.GetType() == raftpb.ConfChangeRemoveNode {
					cl.counts.removedBeforeJoins.Add(1)
				}
			}
		} else if !errors.Is(err, errConfDropped) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join %s: %w", m.GetNodeId(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// joinChange is the conf change that makes the membership hold m, or nil if it already does.
func (cl *Cluster) joinChange(m *command.Member) (*raftpb.ConfChangeV2, error) {
	id := m.GetRaftId()
	cs := cl.members.ConfState()
	if old, ok := cl.members.Get(id); ok {
		if proto.Equal(old, m) {
			return nil, nil
		}
		if !m.GetVoter() && IsVoter(cs, id) {
			if len(cs.GetVoters()) == 1 {
				return nil, fmt.Errorf("cannot make %s a non-voter: it is the only voter", m.GetNodeId())
			}
			return confChange([]*raftpb.ConfChangeSingle{change(raftpb.ConfChangeAddLearnerNode, id)}, m)
		}
		return confChange([]*raftpb.ConfChangeSingle{change(raftpb.ConfChangeUpdateNode, id)}, m)
	}
	changes := []*raftpb.ConfChangeSingle{}
	for _, old := range []func() (*command.Member, bool){
		func() (*command.Member, bool) { return cl.members.ByNodeID(m.GetNodeId()) },
		func() (*command.Member, bool) { return cl.members.byRaftAddr(m.GetRaftAddr()) },
	} {
		o, ok := old()
		if !ok || slices.ContainsFunc(changes, func(c *raftpb.ConfChangeSingle) bool { return c.GetNodeId() == o.GetRaftId() }) {
			continue
		}
		if o.GetRaftId() == cl.raftID || cl.recentlyActive(o.GetRaftId()) {
			return nil, fmt.Errorf("node %s (address %s) is still an active member of the cluster under Raft ID %x; refusing to replace it with %x",
				o.GetNodeId(), o.GetRaftAddr(), o.GetRaftId(), id)
		}
		if IsVoter(cs, o.GetRaftId()) && len(cs.GetVoters()) == 1 {
			return nil, fmt.Errorf("cannot replace %s: it is the only voter", o.GetNodeId())
		}
		changes = append(changes, change(raftpb.ConfChangeRemoveNode, o.GetRaftId()))
	}
	changes = append(changes, change(raftpb.ConfChangeAddLearnerNode, id))
	return confChange(changes, m)
}

// recentlyActive reports whether the leader has heard from id within the last election timeout.
func (cl *Cluster) recentlyActive(id uint64) bool {
	active := false
	cl.node.OnRaft(context.Background(), func(rn *raft.RawNode) {
		rn.WithProgress(func(pid uint64, _ raft.ProgressType, pr tracker.Progress) {
			if pid == id {
				active = pr.RecentActive
			}
		})
	})
	return active
}

var errConfDropped = raftnode.ErrConfDropped

// proposeConfChange proposes cc and waits until it is applied.
func (cl *Cluster) proposeConfChange(ctx context.Context, cc *raftpb.ConfChangeV2) error {
	cl.confMu.Lock()
	defer cl.confMu.Unlock()
	return cl.node.ProposeConfChange(ctx, cc)
}
