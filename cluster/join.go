package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/errcode"
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
			return err
		}
		if applied != nil && proto.Equal(cc, applied) {
			// Committed, yet the Membership does not hold m: every node cancelled the change (confcheck.go).
			return fmt.Errorf("the Membership change for %s was cancelled: it would have left an invalid configuration", m.GetNodeId())
		}
		err = cl.proposeConfChange(ctx, cc)
		if err == nil {
			applied = cc
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

// joinChange is the conf change that makes the Membership hold m, or nil if it already does.
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

// joinCluster asks the -join targets, in turn, to add this node, trying every target up to attempts
// times with -join-interval between rounds.
func (cl *Cluster) joinCluster(ctx context.Context, attempts int) error {
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(cl.cfg.JoinInterval):
			}
		}
		for _, target := range cl.cfg.Join {
			if err := cl.JoinThrough(ctx, target); err != nil {
				if errors.Is(err, errcode.ErrUnauthorized) {
					// Asking again changes nothing: the credentials are what they are.
					return fmt.Errorf("the cluster refused to let this node join: %w (give -join-as a user of the -auth file with the %s permission)",
						err, cl.joinPermName())
				}
				lastErr = err
				cl.log.Warn("join attempt failed", "target", target, "err", err)
				continue
			}
			cl.logJoined(target)
			return nil
		}
	}
	return fmt.Errorf("failed to join cluster after %d attempts: %w", attempts, lastErr)
}

// joinPermName names the permission a join of this node needs.
func (cl *Cluster) joinPermName() string {
	if cl.cfg.Voter {
		return `"join"`
	}
	return `"join-read-only" (or "join")`
}

// logJoined says that the leader added this node. A voter is not one yet: it votes, and reports ready,
// once it has caught up and the leader has promoted it (applyConfChange says so then).
func (cl *Cluster) logJoined(through string) {
	if cl.cfg.Voter {
		cl.log.Info("added to the cluster as a learner: this node becomes a voter once it has caught up", "through", through)
		return
	}
	cl.log.Info("joined the cluster as a non-voting read replica", "through", through)
}

// JoinThrough asks the node at target (an HTTP or a Raft address) to add this node to its cluster, or to
// update its entry, and learns the cluster ID from the answer.
func (cl *Cluster) JoinThrough(ctx context.Context, target string) error {
	addr, err := cl.resolveRaftAddr(ctx, target)
	if err != nil {
		return err
	}
	if addr == cl.cfg.RaftAddr {
		return errors.New("cannot join through this node itself")
	}
	b, err := proto.Marshal(&command.JoinRequest{Member: cl.selfMember(), ClusterId: cl.clusterID.Load(), Credentials: cl.cfg.JoinAs})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rb, err := cl.tr.Call(cctx, addr, nodecall.Join, b)
	if err != nil {
		return explainTLS(addr, err)
	}
	var resp command.JoinResponse
	if err := proto.Unmarshal(rb, &resp); err != nil {
		return fmt.Errorf("decode join response from %s: %w", addr, err)
	}
	if resp.GetClusterId() == 0 {
		return nil // a member of a cluster that predates cluster IDs
	}
	if err := cl.checkCluster(resp.GetClusterId(), "at "+addr); err != nil {
		return err
	}
	return cl.setClusterID(resp.GetClusterId())
}

// resolveRaftAddr turns a -join target into a Raft address. A target may be a node's HTTP API
// (http://host:port, https://host:port, or a bare host:port that answers HTTP), whose /status reports the
// node's Raft address, or a Raft address.
func (cl *Cluster) resolveRaftAddr(ctx context.Context, target string) (string, error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return cl.cfg.ResolveHTTP(ctx, target)
	}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := cl.calls.NodeMeta(mctx, target)
	cancel()
	if err == nil {
		return target, nil
	}
	scheme := "http://"
	if strings.HasPrefix(cl.cfg.HTTPURL, "https://") {
		scheme = "https://" // a secured cluster: never send -join-as credentials in the clear
	}
	if addr, herr := cl.cfg.ResolveHTTP(ctx, scheme+target); herr == nil {
		return addr, nil
	}
	return "", fmt.Errorf("%s: not reachable as a Raft or HTTP address: %w", target, explainTLS(target, err))
}

// explainTLS says what a failed TLS handshake with the node at addr means for the operator.
func explainTLS(addr string, err error) error {
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	switch {
	case errors.As(err, &verify):
		return fmt.Errorf("cannot verify the certificate of the node at %s: %w (it must be signed by the CA given with -node-ca-cert, or by one of the system's roots without that flag)", addr, err)
	case errors.As(err, &alert), err != nil && strings.Contains(err.Error(), "remote error: tls: "):
		return fmt.Errorf("the node at %s refused this node's TLS certificate or connection: %w (its -node-ca-cert, or the system's roots, must trust this node's -node-cert)", addr, err)
	}
	return err
}
