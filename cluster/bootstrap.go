package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/nodecall"
)

// bootstrapOrRejoin starts a first node that has no data. If the cluster it belonged to before its data
// was wiped is still running, that cluster keeps sending it raft traffic addressed to its old identity
// (peers redial within half a second); AcceptStream then reports where it came from and the node rejoins
// through it. Only if no such contact comes within the grace period does it bootstrap a new cluster.
func (cl *Cluster) bootstrapOrRejoin(ctx context.Context) error {
	timer := time.NewTimer(cl.cfg.BootstrapGrace)
	defer timer.Stop()
	select {
	case addr := <-cl.boot.contact:
		cl.log.Warn("an existing cluster knows this node-id: this node lost its data; rejoining", "through", addr)
		cl.cfg.Join = []string{addr}
		// The cluster is there; keep trying until it takes this node back (it first waits for the old
		// identity to go quiet).
		if err := cl.joinCluster(ctx, 1<<30); err != nil {
			return err
		}
		return cl.startRaft(nil)
	case <-timer.C:
		return cl.bootstrap([]*command.Member{cl.selfMember()})
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (cl *Cluster) bootstrap(members []*command.Member) error {
	slices.SortFunc(members, func(a, b *command.Member) int {
		switch {
		case a.GetRaftId() < b.GetRaftId():
			return -1
		case a.GetRaftId() > b.GetRaftId():
			return 1
		}
		return 0
	})
	peers := make([]raft.Peer, len(members))
	for i, m := range members {
		ctx, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return err
		}
		peers[i] = raft.Peer{ID: m.GetRaftId(), Context: ctx}
	}
	id := clusterIDFor(members)
	if err := cl.setClusterID(id); err != nil {
		return err
	}
	cl.log.Info("bootstrapping new cluster", "members", len(members), "cluster_id", fmt.Sprintf("%x", id))
	return cl.startRaft(peers)
}

func (cl *Cluster) notify(m *command.Member) {
	if m.GetNodeId() == "" || m.GetRaftId() == 0 {
		return
	}
	cl.boot.mu.Lock()
	defer cl.boot.mu.Unlock()
	cl.boot.notified[m.GetNodeId()] = m
}

func (cl *Cluster) notifiedMembers() []*command.Member {
	cl.boot.mu.Lock()
	defer cl.boot.mu.Unlock()
	out := make([]*command.Member, 0, len(cl.boot.notified))
	for _, m := range cl.boot.notified {
		out = append(out, m)
	}
	return out
}

// bootstrapExpect forms one cluster out of BootstrapExpect nodes started together with the same -join
// list: each tries to join; failing that, it announces itself to every target; once a node has heard from
// enough distinct nodes (itself included), it bootstraps with exactly those. Every node that does so
// builds the same initial configuration, since each member describes itself identically to all.
func (cl *Cluster) bootstrapExpect(ctx context.Context) error {
	deadline := time.Now().Add(cl.cfg.BootstrapExpectTimeout)
	self := cl.selfMember()
	cl.notify(self)
	announce, err := proto.Marshal(&command.NotifyRequest{Member: self, Credentials: cl.cfg.JoinAs})
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		for _, target := range cl.cfg.Join {
			if err := cl.JoinThrough(ctx, target); err == nil {
				cl.logJoined(target)
				return cl.startRaft(nil)
			}
		}
		for _, target := range cl.cfg.Join {
			addr, err := cl.resolveRaftAddr(ctx, target)
			if err != nil || addr == cl.cfg.RaftAddr {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			cl.tr.Call(cctx, addr, nodecall.Notify, announce)
			cancel()
		}
		if ms := cl.notifiedMembers(); len(ms) >= cl.cfg.BootstrapExpect {
			return cl.bootstrap(ms)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(500+rand.IntN(500)) * time.Millisecond):
		}
	}
	return fmt.Errorf("bootstrap-expect %d: timed out after %s with %d nodes", cl.cfg.BootstrapExpect,
		cl.cfg.BootstrapExpectTimeout, len(cl.notifiedMembers()))
}
