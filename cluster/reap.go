package cluster

import (
	"context"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// Reaping (-raft-reap-node-timeout, -raft-reap-read-only-node-timeout): the leader removes a member it has
// not heard from for that long: a voter, or a non-voter. It is how a cluster forgets nodes that are gone
// for good (a StatefulSet scaled down, a machine retired) without an operator's /remove, while a node
// that is only restarting (an upgrade, a drain) stays a member. A reaped node that comes back with its
// data rejoins through -join or discovery (refreshMembership).

// reapCheckEvery is how often the leader looks.
const reapCheckEvery = time.Second

// reap runs on every node until the cluster stops; only the leader acts. lastSeen starts afresh whenever
// this node becomes leader, so a new leader first waits a whole timeout for every member.
func (cl *Cluster) reap() {
	if cl.cfg.ReapTimeout <= 0 && cl.cfg.ReapReadOnlyTimeout <= 0 {
		return
	}
	ctx, cancel := cl.stopContext()
	defer cancel()
	lastSeen := map[uint64]time.Time{}
	for cl.sleep(reapCheckEvery) {
		if !cl.node.IsLeader() {
			clear(lastSeen)
			continue
		}
		now := time.Now()
		active := map[uint64]bool{}
		cl.node.OnRaft(ctx, func(rn *raft.RawNode) {
			rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
				active[id] = pr.RecentActive
			})
		})
		for _, m := range cl.members.List() {
			if m.RaftID == cl.raftID {
				continue
			}
			seen, known := lastSeen[m.RaftID]
			if active[m.RaftID] || !known {
				lastSeen[m.RaftID] = now
				continue
			}
			timeout := cl.cfg.ReapTimeout
			if !m.Voter && !m.WantsVote {
				timeout = cl.cfg.ReapReadOnlyTimeout
			}
			if timeout <= 0 || now.Sub(seen) < timeout {
				continue
			}
			cl.log.Warn("reaping a node not heard from", "reaped", m.NodeID, "for", now.Sub(seen).Round(time.Second).String(),
				"voter", m.Voter)
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			err := cl.Remove(rctx, m.NodeID)
			rcancel()
			if err != nil {
				cl.log.Warn("could not reap node; trying again", "reaped", m.NodeID, "err", err)
				continue
			}
			delete(lastSeen, m.RaftID)
			cl.counts.reaped.Add(1)
		}
	}
}
