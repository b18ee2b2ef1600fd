package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/raftlite/raftlite/errcode"
)

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
		// A node stopped soon after it started may not know the leader yet: wait for one a little (the
		// removal goes through it), rather than give up at once.
		err := cl.Remove(ctx, cl.cfg.NodeID)
		for deadline := time.Now().Add(4 * cl.cfg.ElectionTimeout); errors.Is(err, errcode.ErrNoLeader) && time.Now().Before(deadline); {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			if ctx.Err() != nil {
				break
			}
			err = cl.Remove(ctx, cl.cfg.NodeID)
		}
		if err != nil {
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
