package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Start makes this node a member: a node with data restarts as the member it was (after a peers.json
// recovery, if one is asked for); a node without data joins a cluster through -join, forms one with
// -bootstrap-expect, comes back into the cluster that still knows its node-id, or bootstraps a new one.
// It returns once raft runs; the node may not know a leader yet.
func (cl *Cluster) Start(ctx context.Context) error {
	if !Fresh(cl.rlog) {
		if err := cl.recoverFromPeersFile(ctx); err != nil {
			return err
		}
		if len(cl.cfg.Join) > 0 && cl.onlyMember() {
			// A cluster that shrank to this node keeps its old -join; only a target in another cluster means
			// the operator wants this node elsewhere, which its data forbids.
			if target := cl.joinTargetElsewhere(ctx); target != "" {
				return fmt.Errorf("node is the only node in a single-node cluster, joining other clusters not supported (%s belongs to another cluster: start this node without -join to run its own cluster, or delete its data directory to join that one)", target)
			}
		}
		if err := cl.startRaft(nil); err != nil {
			return err
		}
		// Already a member: its entry changes only if its addresses or suffrage did (refresh.go).
		go cl.refreshMembership()
		return nil
	}
	if _, err := os.Stat(cl.peersPath()); err == nil {
		return fmt.Errorf("%s: this node holds no data, and peers.json recovery is for the nodes that survived with the cluster's data; remove the file and start this node with -join to add it", cl.peersPath())
	}
	switch {
	case cl.cfg.BootstrapExpect > 0 && len(cl.cfg.Join) > 0:
		return cl.bootstrapExpect(ctx)
	case len(cl.cfg.Join) > 0:
		if err := cl.joinCluster(ctx, cl.cfg.JoinAttempts); err != nil {
			return err
		}
		return cl.startRaft(nil)
	case !cl.cfg.Voter:
		return errors.New("cannot create a new non-voting node without joining it to an existing cluster")
	default:
		return cl.bootstrapOrRejoin(ctx)
	}
}

// joinTargetElsewhere returns a -join target that answers as a member of another cluster, if any.
func (cl *Cluster) joinTargetElsewhere(ctx context.Context) string {
	for _, target := range cl.cfg.Join {
		addr, err := cl.resolveRaftAddr(ctx, target)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		meta, err := cl.calls.NodeMeta(cctx, addr)
		cancel()
		if err == nil && meta.GetClusterId() != 0 && meta.GetClusterId() != cl.clusterID.Load() {
			return target
		}
	}
	return ""
}

// onlyMember reports whether this node is the whole of its cluster.
func (cl *Cluster) onlyMember() bool {
	list := cl.members.List()
	return len(list) == 1 && list[0].RaftID == cl.raftID
}

// Leave is what a node does as it shuts down gracefully: with removeSelf (-raft-cluster-remove-shutdown)
// it takes itself out of the cluster; otherwise it says so if its going leaves no majority of voters
// running, and a leader hands leadership to the most up-to-date voter, so that the cluster does not wait
// an election timeout for a new one.
func (cl *Cluster) Leave(ctx context.Context, removeSelf bool) {
	defer cl.Stop()
	if !cl.node.Running() {
		return
	}
	if removeSelf {
		if err := cl.Remove(ctx, cl.cfg.NodeID); err != nil {
			cl.log.Warn("could not remove this node from the cluster on shutdown", "err", err)
		}
		return
	}
	cl.warnIfShutdownStrands(ctx)
	if cl.node.IsLeader() {
		if err := cl.TransferLeadership(ctx, 0); err != nil && !errors.Is(err, errNoTransferee) {
			cl.log.Warn("could not hand leadership over before shutting down", "err", err)
		}
	}
}
