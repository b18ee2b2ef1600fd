package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/raftlite/raftlite/errcode"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// Ordinary operator actions must not leave a cluster that cannot elect a leader. A removal that would
// leave voters of which fewer than a majority are reachable is refused (removing the only reachable
// voter besides the leader of a 3-voter cluster whose third voter is down, say). A leader that removes
// itself waits until the voters that remain know the removal is committed: until they do, they still
// count it as a voter, and two of them could not elect a leader without it. A shutdown that leaves fewer
// than a majority of the voters running is said loudly in the log.

// reachableVoters (leader) counts the voters in ids the leader has heard from within an election timeout,
// itself included, and names the others. ok is false if the raft loop could not be asked.
func (cl *Cluster) reachableVoters(ctx context.Context, ids []uint64) (reachable int, unreachable []string, ok bool) {
	result := make(chan map[uint64]bool, 1)
	if !cl.node.OnRaft(ctx, func(rn *raft.RawNode) {
		active := map[uint64]bool{}
		rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			if pr.RecentActive {
				active[id] = true
			}
		})
		result <- active
	}) {
		return 0, nil, false
	}
	active := <-result
	active[cl.raftID] = true
	for _, id := range ids {
		if active[id] {
			reachable++
		} else {
			unreachable = append(unreachable, cl.members.NodeIDs([]uint64{id})...)
		}
	}
	slices.Sort(unreachable)
	return reachable, unreachable, true
}

// checkRemovalLeavesQuorum (leader) refuses to remove a voter when the voters left behind would not
// include a reachable majority. Right after an election the leader has not heard from everyone yet, so a
// failing check is tried again for an election timeout before it refuses.
func (cl *Cluster) checkRemovalLeavesQuorum(ctx context.Context, id uint64, nodeID string) error {
	cs := cl.members.ConfState()
	if !IsVoter(cs, id) {
		return nil
	}
	left := slices.DeleteFunc(slices.Clone(cs.GetVoters()), func(v uint64) bool { return v == id })
	deadline := time.Now().Add(cl.cfg.ElectionTimeout)
	for {
		reachable, unreachable, ok := cl.reachableVoters(ctx, left)
		if !ok {
			return fmt.Errorf("remove %s: %w", nodeID, cmp.Or[error](ctx.Err(), errcode.ErrStopped))
		}
		if reachable >= len(left)/2+1 {
			return nil
		}
		if time.Now().After(deadline) {
			return errcode.New(errcode.Conflict, fmt.Sprintf("refusing to remove %s: the %d voters left would include only %d reachable (%s not reachable), fewer than the %d needed to elect a leader or commit anything; bring them back or remove them first",
				nodeID, len(left), reachable, strings.Join(unreachable, ", "), len(left)/2+1))
		}
		if !cl.sleep(100 * time.Millisecond) {
			return errcode.ErrStopped
		}
	}
}

// waitRemovalKnown (a leader that removed itself) waits until a majority of the voters left has learned
// that the log is committed up to index, so that they apply the removal and can elect a leader without
// this node. It gives up when ctx ends or after two election timeouts.
func (cl *Cluster) waitRemovalKnown(ctx context.Context, index uint64) {
	ctx, cancel := context.WithTimeout(ctx, 2*cl.cfg.ElectionTimeout)
	defer cancel()
	var voters []Member
	for _, m := range cl.members.List() {
		if m.Voter && m.RaftID != cl.raftID {
			voters = append(voters, m)
		}
	}
	for {
		known := 0
		for _, m := range voters {
			cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
			meta, err := cl.calls.NodeMeta(cctx, m.RaftAddr)
			ccancel()
			if err == nil && meta.GetCommitIndex() >= index {
				known++
			}
		}
		if known >= len(voters)/2+1 {
			return
		}
		select {
		case <-ctx.Done():
			cl.log.Warn("the voters left may not know yet that this node's removal is committed", "index", index)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// warnIfShutdownStrands says, before a voter shuts down, when the voters left running would be fewer than
// a majority: the cluster then elects no leader and takes no writes until a voter returns. (A leader
// knows which voters it hears from; another node counts every other voter as running.)
func (cl *Cluster) warnIfShutdownStrands(ctx context.Context) {
	cs := cl.members.ConfState()
	if !IsVoter(cs, cl.raftID) || len(cs.GetVoters()) < 2 {
		return
	}
	others := slices.DeleteFunc(slices.Clone(cs.GetVoters()), func(v uint64) bool { return v == cl.raftID })
	running, unreachable := len(others), []string(nil)
	if cl.node.IsLeader() {
		if n, names, ok := cl.reachableVoters(ctx, others); ok {
			running, unreachable = n, names
		}
	}
	if need := len(cs.GetVoters())/2 + 1; running < need {
		cl.log.Error("shutting down leaves fewer than a majority of the voters running: the cluster elects no leader and takes no writes until this node or another voter returns (to shrink the cluster instead, remove this node first: DELETE /remove, or -raft-cluster-remove-shutdown)",
			"voters", len(cs.GetVoters()), "running_after", running, "needed", need, "not_reachable", strings.Join(unreachable, ", "))
	}
}
