package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/nodecall"
)

// Remove takes the node with the given node-id out of the cluster (on the leader; followers pass it on).
// It returns once the node is gone from the membership.
func (cl *Cluster) Remove(ctx context.Context, nodeID string) error {
	for {
		if !cl.node.IsLeader() {
			_, err := cl.calls.CallLeader(ctx, nodecall.Remove, &command.RemoveRequest{NodeId: nodeID})
			return err
		}
		m, ok := cl.members.ByNodeID(nodeID)
		if !ok {
			return cl.unknownNode(nodeID)
		}
		cs := cl.members.ConfState()
		if IsVoter(cs, m.GetRaftId()) && len(cs.GetVoters()) == 1 {
			return errcode.New(errcode.Conflict, fmt.Sprintf("cannot remove %s: it is the only voter", nodeID))
		}
		if err := cl.checkRemovalLeavesQuorum(ctx, m.GetRaftId(), nodeID); err != nil {
			return err
		}
		cc, err := confChange([]*raftpb.ConfChangeSingle{change(raftpb.ConfChangeRemoveNode, m.GetRaftId())})
		if err != nil {
			return err
		}
		err = cl.proposeConfChange(ctx, cc)
		if _, still := cl.members.Get(m.GetRaftId()); !still {
			if m.GetRaftId() == cl.raftID {
				// A leader that removed itself has stepped down by now (quorum.go).
				cl.waitRemovalKnown(ctx, cl.node.Applied().Index())
			}
			return nil
		}
		if err != nil && !errors.Is(err, errConfDropped) && !errors.Is(err, errcode.ErrNotLeader) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove %s: %w", nodeID, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// unknownNode is the error for a request naming a node-id no member has; it lists the members, so that a
// mistyped name is seen at once.
func (cl *Cluster) unknownNode(nodeID string) error {
	var ids []string
	for _, m := range cl.members.List() {
		ids = append(ids, m.NodeID)
	}
	return errcode.New(errcode.UnknownNode, fmt.Sprintf("node %q is not a member of the cluster (members: %s)", nodeID, strings.Join(ids, ", ")))
}

var errNoTransferee = errcode.New(errcode.Conflict, "no other voter to hand leadership to")

// TransferLeadership hands leadership to the voter with the given Raft ID, or (0) to the most up-to-date
// other voter, and waits until it has moved.
func (cl *Cluster) TransferLeadership(ctx context.Context, to uint64) error {
	if !cl.node.IsLeader() {
		return errcode.ErrNotLeader
	}
	var target uint64
	cl.node.OnRaft(ctx, func(rn *raft.RawNode) {
		st := rn.Status()
		var best uint64
		for id, pr := range st.Progress {
			if id == cl.raftID || pr.IsLearner {
				continue
			}
			if to != 0 && id != to {
				continue
			}
			if target == 0 || pr.Match > best {
				target, best = id, pr.Match
			}
		}
		if target != 0 {
			rn.TransferLeader(target)
		}
	})
	if target == 0 {
		if to != 0 {
			return errcode.New(errcode.Conflict, fmt.Sprintf("%x is not a voter that can take over", to))
		}
		return errNoTransferee
	}
	deadline := time.Now().Add(2 * cl.cfg.ElectionTimeout)
	for time.Now().Before(deadline) {
		if l := cl.node.Leader(); l != cl.raftID && l != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return errcode.New(errcode.Timeout, fmt.Sprintf("leadership did not move to %x in time", target))
}

// Stepdown makes the leader hand over leadership (to the node with nodeID, if given); a follower passes
// the request on to the leader.
func (cl *Cluster) Stepdown(ctx context.Context, nodeID string, wait bool) error {
	if !cl.node.IsLeader() {
		_, err := cl.calls.CallLeader(ctx, nodecall.Stepdown, &command.StepdownRequest{NodeId: nodeID, Wait: wait})
		return err
	}
	return cl.stepdownLocal(ctx, nodeID, wait)
}

func (cl *Cluster) stepdownLocal(ctx context.Context, nodeID string, wait bool) error {
	var to uint64
	if nodeID != "" {
		m, ok := cl.members.ByNodeID(nodeID)
		if !ok {
			return cl.unknownNode(nodeID)
		}
		if m.GetRaftId() == cl.raftID {
			return errcode.New(errcode.Conflict, "cannot step down to the current Leader") // rqlite's words
		}
		if !IsVoter(cl.members.ConfState(), m.GetRaftId()) {
			return errcode.New(errcode.Conflict, fmt.Sprintf("cannot step down to %s: it is not a voter, and only a voter can lead", nodeID))
		}
		to = m.GetRaftId()
	}
	if !wait {
		cl.goBackground(func() {
			ctx, cancel := cl.stopContext()
			defer cancel()
			cl.TransferLeadership(ctx, to)
		})
		return nil
	}
	return cl.TransferLeadership(ctx, to)
}
