package cluster

import (
	"context"
	"math/rand/v2"
	"time"
)

// Discovery finds the cluster of a node that starts without data (-disco-mode); package disco implements
// both kinds.
type Discovery struct {
	// Lookup (DNS discovery) returns the Raft addresses a DNS name lists now. The node forms a cluster of
	// BootstrapExpect of them, or joins the one they run, exactly as with -join and -bootstrap-expect,
	// except that the targets are looked up afresh at every round.
	Lookup func(ctx context.Context) ([]string, error)
	// Registry (etcd or Consul) holds the leader's Raft address under a key.
	Registry Registry
}

// Registry is a key naming the leader, in a store with put-if-absent.
type Registry interface {
	// Leader returns the Raft address the key names, "" if the key is absent.
	Leader(ctx context.Context) (string, error)
	// Claim stores this node under the key if it is absent, and reports whether it did.
	Claim(ctx context.Context) (bool, error)
}

// How long a node that found no leader key, and could not claim it, waits before reading it again.
const registerRetry = 3 * time.Second

// targets are the addresses to join through or notify: -join's, or those discovery looks up now.
func (j *joiner) targets(ctx context.Context) []string {
	d := j.cl.cfg.Discovery
	if d == nil || d.Lookup == nil {
		return j.cl.cfg.Join
	}
	addrs, err := d.Lookup(ctx)
	if err != nil {
		j.cl.log.Warn("discovery lookup failed; trying again", "err", err)
		return nil
	}
	return addrs
}

// register runs key-value discovery: join the leader the key names; if there is none, claim the key and
// bootstrap a one-node cluster (only one node can claim it); else wait and look again. It runs until it
// succeeds or ctx ends (the node is stopping).
func (j *joiner) register(ctx context.Context) error {
	reg := j.cl.cfg.Discovery.Registry
	self := j.cl.selfMember()
	for {
		leader, err := reg.Leader(ctx)
		switch {
		case err != nil:
			j.cl.log.Warn("discovery: cannot read the leader key; trying again", "err", err)
		case leader == self.GetRaftAddr():
			// This node led the cluster before it lost its data: the others elect a new leader, which
			// rewrites the key within seconds.
			j.cl.log.Warn("discovery: the leader key names this node, which holds no data; waiting for the cluster to name its new leader (if that cluster is gone, delete the key or use another -disco-key)")
		case leader != "":
			j.cl.cfg.Join = []string{leader}
			if err := j.joinCluster(ctx, j.cl.cfg.JoinAttempts); err == nil {
				return j.cl.startRaft(nil)
			} else if ctx.Err() == nil {
				j.cl.log.Warn("discovery: cannot join the leader the key names; reading the key again", "leader", leader, "err", err)
			}
		case !j.cl.cfg.Voter:
			j.cl.log.Info("discovery: no leader registered yet; a non-voting node waits for one")
		default:
			claimed, err := reg.Claim(ctx)
			if err != nil {
				j.cl.log.Warn("discovery: cannot claim the leader key; trying again", "err", err)
			} else if claimed {
				j.cl.log.Info("node registered as leader using discovery service")
				return j.bootstrap(nil)
			}
		}
		wait := registerRetry + time.Duration(rand.Int64N(int64(registerRetry)))
		if leader != "" && err == nil {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// joinDiscovered joins, as a non-voter, the cluster the DNS name lists, looking it up at every round.
func (j *joiner) joinDiscovered(ctx context.Context) error {
	for {
		for _, target := range j.targets(ctx) {
			if err := j.joinThrough(ctx, target); err == nil {
				j.logJoined(target)
				return j.cl.startRaft(nil)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(j.cl.cfg.JoinInterval):
		}
	}
}
