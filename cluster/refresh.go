package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/raftlite/raftlite/errcode"
	"google.golang.org/protobuf/proto"
)

// A node restarted with other addresses (-http-addr, -raft-addr or their advertised forms) or another
// suffrage must not stay in the cluster under the old ones: the others could not reach it, and /nodes
// would send clients to the wrong place. So a restarted node compares its entry in the Membership with
// how it was started and, until they agree, asks the leader to update it: through the -join targets and
// through every member it knows, since a first node has no -join. The peers it dials learn its new Raft
// address at once from the hello (AcceptStream); the membership, and so every node's /nodes, once the
// update commits.

// refreshMembership runs on a restarted node until its entry matches this start's configuration, or the
// node is not a member (a removed node without -join stays out), or the store stops.
func (cl *Cluster) refreshMembership() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-cl.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	warned := false
	for {
		self := cl.selfMember()
		cur, member := cl.members.Get(cl.raftID)
		if member && proto.Equal(cur, self) {
			if warned {
				cl.log.Info("this node's entry in the cluster is up to date", "raft_addr", self.GetRaftAddr(), "http_addr", self.GetHttpAddr())
			}
			return
		}
		if !member && len(cl.cfg.Join) == 0 {
			return
		}
		var err error
		if cl.node.IsLeader() {
			err = cl.Join(ctx, self)
		} else {
			err = cl.joinAny(ctx)
		}
		if err == nil {
			// Committed; this node applies the update in a moment.
			if !cl.sleep(100 * time.Millisecond) {
				return
			}
			continue
		}
		if !warned {
			warned = true
			cl.log.Warn("this node's entry in the cluster differs from its flags (addresses or suffrage); updating it, retrying until it is done",
				"err", err, "raft_addr", self.GetRaftAddr(), "http_addr", self.GetHttpAddr())
		}
		if !cl.sleep(cl.cfg.JoinInterval) {
			return
		}
	}
}

// joinAny asks the -join targets, then every other member this node knows, to update this node's entry.
func (cl *Cluster) joinAny(ctx context.Context) error {
	targets := slices.Clone(cl.cfg.Join)
	for _, m := range cl.members.List() {
		if m.RaftID != cl.raftID && m.RaftAddr != "" {
			targets = append(targets, m.RaftAddr)
		}
	}
	var lastErr error = errcode.ErrNoLeader
	for _, target := range targets {
		if lastErr = cl.JoinThrough(ctx, target); lastErr == nil {
			return nil
		}
	}
	return lastErr
}
