package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/nodecall"
)

// joiner gets this node into a cluster: it restarts as the member it was, joins through -join, forms a
// cluster with -bootstrap-expect, comes back into the cluster that still knows its node-id, or bootstraps
// a new one; and it keeps this node's entry in the membership matching its flags.
type joiner struct {
	cl *Cluster
	// contact reports an existing cluster that contacted this (wiped, fresh) node: the address to rejoin through.
	contact chan string
	// notified collects the nodes that announced themselves for -bootstrap-expect, by node-id.
	mu       sync.Mutex
	notified map[string]*command.Member
}

// joinCluster asks the -join targets, in turn, to add this node, trying every target up to attempts
// times with -join-interval between rounds.
func (j *joiner) joinCluster(ctx context.Context, attempts int) error {
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(j.cl.cfg.JoinInterval):
			}
		}
		for _, target := range j.cl.cfg.Join {
			if err := j.joinThrough(ctx, target); err != nil {
				if errors.Is(err, errcode.ErrUnauthorized) {
					// Asking again changes nothing: the credentials are what they are.
					return fmt.Errorf("the cluster refused to let this node join: %w (give -join-as a user of the -auth file with the %s permission)",
						err, j.joinPermName())
				}
				lastErr = err
				j.cl.log.Warn("join attempt failed", "target", target, "err", err)
				continue
			}
			j.logJoined(target)
			return nil
		}
	}
	return fmt.Errorf("failed to join cluster after %d attempts: %w", attempts, lastErr)
}

// joinPermName names the permission a join of this node needs.
func (j *joiner) joinPermName() string {
	if j.cl.cfg.Voter {
		return `"join"`
	}
	return `"join-read-only" (or "join")`
}

// logJoined says that the leader added this node. A voter is not one yet: it votes, and reports ready,
// once it has caught up and the leader has promoted it (applyConfChange says so then).
func (j *joiner) logJoined(through string) {
	if j.cl.cfg.Voter {
		j.cl.log.Info("added to the cluster as a learner: this node becomes a voter once it has caught up", "through", through)
		return
	}
	j.cl.log.Info("joined the cluster as a non-voting read replica", "through", through)
}

// JoinThrough asks the node at target (an HTTP or a Raft address) to add this node to its cluster, or to
// update its entry, and learns the cluster ID from the answer.
func (j *joiner) joinThrough(ctx context.Context, target string) error {
	addr, err := j.resolveRaftAddr(ctx, target)
	if err != nil {
		return err
	}
	if addr == j.cl.cfg.RaftAddr {
		return errors.New("cannot join through this node itself")
	}
	b, err := proto.Marshal(&command.JoinRequest{Member: j.cl.selfMember(), ClusterId: j.cl.clusterID.Load(), Credentials: j.cl.cfg.JoinAs})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rb, err := j.cl.tr.Call(cctx, addr, nodecall.Join, b)
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
	if err := j.cl.checkCluster(resp.GetClusterId(), "at "+addr); err != nil {
		return err
	}
	return j.cl.setClusterID(resp.GetClusterId())
}

// resolveRaftAddr turns a -join target into a Raft address. A target may be a node's HTTP API
// (http://host:port, https://host:port, or a bare host:port that answers HTTP), whose /status reports the
// node's Raft address, or a Raft address.
func (j *joiner) resolveRaftAddr(ctx context.Context, target string) (string, error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return j.cl.cfg.ResolveHTTP(ctx, target)
	}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := j.cl.calls.NodeMeta(mctx, target)
	cancel()
	if err == nil {
		return target, nil
	}
	scheme := "http://"
	if strings.HasPrefix(j.cl.cfg.HTTPURL, "https://") {
		scheme = "https://" // a secured cluster: never send -join-as credentials in the clear
	}
	if addr, herr := j.cl.cfg.ResolveHTTP(ctx, scheme+target); herr == nil {
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

// bootstrapOrRejoin starts a first node that has no data. If the cluster it belonged to before its data
// was wiped is still running, that cluster keeps sending it raft traffic addressed to its old identity
// (peers redial within half a second); AcceptStream then reports where it came from and the node rejoins
// through it. Only if no such contact comes within the grace period does it bootstrap a new cluster.
func (j *joiner) bootstrapOrRejoin(ctx context.Context) error {
	timer := time.NewTimer(j.cl.cfg.BootstrapGrace)
	defer timer.Stop()
	select {
	case addr := <-j.contact:
		j.cl.log.Warn("an existing cluster knows this node-id: this node lost its data; rejoining", "through", addr)
		j.cl.cfg.Join = []string{addr}
		// The cluster is there; keep trying until it takes this node back (it first waits for the old
		// identity to go quiet).
		if err := j.joinCluster(ctx, 1<<30); err != nil {
			return err
		}
		return j.cl.startRaft(nil)
	case <-timer.C:
		return j.bootstrap(nil)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bootstrap starts a new cluster of members (nil: of this node alone).
func (j *joiner) bootstrap(members []*command.Member) error {
	if members == nil {
		members = []*command.Member{j.cl.selfMember()}
	}
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
	if err := j.cl.setClusterID(id); err != nil {
		return err
	}
	j.cl.log.Info("bootstrapping new cluster", "members", len(members), "cluster_id", fmt.Sprintf("%x", id))
	return j.cl.startRaft(peers)
}

func (j *joiner) notify(m *command.Member) {
	if m.GetNodeId() == "" || m.GetRaftId() == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.notified[m.GetNodeId()] = m
}

func (j *joiner) notifiedMembers() []*command.Member {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]*command.Member, 0, len(j.notified))
	for _, m := range j.notified {
		out = append(out, m)
	}
	return out
}

// bootstrapExpect forms one cluster out of BootstrapExpect nodes started together with the same -join
// list: each tries to join; failing that, it announces itself to every target; once a node has heard from
// enough distinct nodes (itself included), it bootstraps with exactly those. Every node that does so
// builds the same initial configuration, since each member describes itself identically to all.
func (j *joiner) bootstrapExpect(ctx context.Context) error {
	deadline := time.Now().Add(j.cl.cfg.BootstrapExpectTimeout)
	self := j.cl.selfMember()
	j.notify(self)
	announce, err := proto.Marshal(&command.NotifyRequest{Member: self, Credentials: j.cl.cfg.JoinAs})
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		targets := j.targets(ctx)
		for _, target := range targets {
			if target == j.cl.cfg.RaftAddr {
				continue // discovery lists this node too
			}
			if err := j.joinThrough(ctx, target); err == nil {
				j.logJoined(target)
				return j.cl.startRaft(nil)
			}
		}
		for _, target := range targets {
			addr, err := j.resolveRaftAddr(ctx, target)
			if err != nil || addr == j.cl.cfg.RaftAddr {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			j.cl.tr.Call(cctx, addr, nodecall.Notify, announce)
			cancel()
		}
		if ms := j.notifiedMembers(); len(ms) >= j.cl.cfg.BootstrapExpect {
			return j.bootstrap(ms)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(500+rand.IntN(500)) * time.Millisecond):
		}
	}
	return fmt.Errorf("bootstrap-expect %d: timed out after %s with %d nodes", j.cl.cfg.BootstrapExpect,
		j.cl.cfg.BootstrapExpectTimeout, len(j.notifiedMembers()))
}

// A node restarted with other addresses (-http-addr, -raft-addr or their advertised forms) or another
// suffrage must not stay in the cluster under the old ones: the others could not reach it, and /nodes
// would send clients to the wrong place. So a restarted node compares its entry in the membership with
// how it was started and, until they agree, asks the leader to update it: through the -join targets and
// through every member it knows, since a first node has no -join. The peers it dials learn its new Raft
// address at once from the hello (AcceptStream); the membership, and so every node's /nodes, once the
// update commits.

// refreshMembership runs on a restarted node until its entry matches this start's configuration, or the
// node is not a member (a removed node without -join stays out), or the store stops.
func (j *joiner) refreshMembership() {
	ctx, cancel := j.cl.stopContext()
	defer cancel()
	warned := false
	for {
		self := j.cl.selfMember()
		cur, member := j.cl.members.Get(j.cl.raftID)
		if member && proto.Equal(cur, self) {
			if warned {
				j.cl.log.Info("this node's entry in the cluster is up to date", "raft_addr", self.GetRaftAddr(), "http_addr", self.GetHttpAddr())
			}
			return
		}
		if !member && len(j.cl.cfg.Join) == 0 && j.cl.cfg.Discovery == nil {
			// Removed, and nothing says where to rejoin: it stays out (start it with -join to bring it back).
			return
		}
		var err error
		if j.cl.node.IsLeader() {
			err = j.cl.Join(ctx, self)
		} else {
			err = j.joinAny(ctx)
		}
		if err == nil {
			// Committed; this node applies the update in a moment.
			if !j.cl.sleep(100 * time.Millisecond) {
				return
			}
			continue
		}
		if !warned {
			warned = true
			j.cl.log.Warn("this node's entry in the cluster differs from its flags (addresses or suffrage); updating it, retrying until it is done",
				"err", err, "raft_addr", self.GetRaftAddr(), "http_addr", self.GetHttpAddr())
		}
		if !j.cl.sleep(j.cl.cfg.JoinInterval) {
			return
		}
	}
}

// joinAny asks the -join targets (or those discovery finds), then every other member this node knows, to
// update this node's entry, or to add it again if it was removed.
func (j *joiner) joinAny(ctx context.Context) error {
	targets := slices.Clone(j.targets(ctx))
	for _, m := range j.cl.members.List() {
		if m.RaftID != j.cl.raftID && m.RaftAddr != "" {
			targets = append(targets, m.RaftAddr)
		}
	}
	var lastErr error = errcode.ErrNoLeader
	for _, target := range targets {
		if lastErr = j.joinThrough(ctx, target); lastErr == nil {
			return nil
		}
	}
	return lastErr
}

// Start makes this node a member: a node with data restarts as the member it was (after a peers.json
// recovery, if one is asked for); a node without data joins a cluster through -join, forms one with
// -bootstrap-expect, comes back into the cluster that still knows its node-id, or bootstraps a new one.
// It returns once raft runs; the node may not know a leader yet.
func (j *joiner) start(ctx context.Context) error {
	if !Fresh(j.cl.rlog) {
		if err := j.cl.recovery.recoverFromPeersFile(ctx); err != nil {
			return err
		}
		if len(j.cl.cfg.Join) > 0 && j.onlyMember() {
			// A cluster that shrank to this node keeps its old -join; only a target in another cluster means
			// the operator wants this node elsewhere, which its data forbids.
			if target := j.joinTargetElsewhere(ctx); target != "" {
				return fmt.Errorf("node is the only node in a single-node cluster, joining other clusters not supported (%s belongs to another cluster: start this node without -join to run its own cluster, or delete its data directory to join that one)", target)
			}
		}
		if err := j.cl.startRaft(nil); err != nil {
			return err
		}
		// Already a member: its entry changes only if its addresses or suffrage did (refresh.go).
		j.cl.goBackground(j.refreshMembership)
		return nil
	}
	if _, err := os.Stat(j.cl.recovery.peersPath()); err == nil {
		return fmt.Errorf("%s: this node holds no data, and peers.json recovery is for the nodes that survived with the cluster's data; remove the file and start this node with -join to add it", j.cl.recovery.peersPath())
	}
	d := j.cl.cfg.Discovery
	switch {
	case d != nil && d.Registry != nil:
		return j.register(ctx)
	case d != nil && d.Lookup != nil && !j.cl.cfg.Voter:
		return j.joinDiscovered(ctx)
	case d != nil && d.Lookup != nil:
		return j.bootstrapExpect(ctx)
	case j.cl.cfg.BootstrapExpect > 0 && len(j.cl.cfg.Join) > 0:
		return j.bootstrapExpect(ctx)
	case len(j.cl.cfg.Join) > 0:
		if err := j.joinCluster(ctx, j.cl.cfg.JoinAttempts); err != nil {
			return err
		}
		return j.cl.startRaft(nil)
	case !j.cl.cfg.Voter:
		return errors.New("cannot create a new non-voting node without joining it to an existing cluster")
	default:
		return j.bootstrapOrRejoin(ctx)
	}
}

// joinTargetElsewhere returns a -join target that answers as a member of another cluster, if any.
func (j *joiner) joinTargetElsewhere(ctx context.Context) string {
	for _, target := range j.cl.cfg.Join {
		addr, err := j.resolveRaftAddr(ctx, target)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		meta, err := j.cl.calls.NodeMeta(cctx, addr)
		cancel()
		if err == nil && meta.GetClusterId() != 0 && meta.GetClusterId() != j.cl.clusterID.Load() {
			return target
		}
	}
	return ""
}

// onlyMember reports whether this node is the whole of its cluster.
func (j *joiner) onlyMember() bool {
	list := j.cl.members.List()
	return len(list) == 1 && list[0].RaftID == j.cl.raftID
}
