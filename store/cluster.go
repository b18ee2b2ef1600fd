package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/raftnode"
)

func (s *Store) httpURL() string {
	if s.cfg.HTTPAddr == "" {
		return ""
	}
	if s.cfg.HTTPS {
		return "https://" + s.cfg.HTTPAddr
	}
	return "http://" + s.cfg.HTTPAddr
}

func (s *Store) selfMember() *command.Member {
	return &command.Member{RaftId: s.raftID, NodeId: s.cfg.NodeID, RaftAddr: s.cfg.RaftAddr, HttpAddr: s.httpURL(), Voter: s.cfg.Voter}
}

// Join adds m to the cluster, or updates it. On a follower the call is passed to the leader. Rules:
// the same Raft ID with the same addresses and suffrage changes nothing; a changed address or suffrage
// updates the entry; a known node-id (or Raft address) under a new Raft ID is a node that lost its data:
// the old identity is removed and the new one added, in one change, once the old one has gone quiet. New
// members join as learners and voters are promoted once they have caught up.
func (s *Store) Join(ctx context.Context, m *command.Member) error {
	if m.GetRaftId() == 0 || m.GetNodeId() == "" || m.GetRaftAddr() == "" {
		return errors.New("join request lacks raft id, node id or address")
	}
	if !s.IsLeader() {
		_, err := s.callLeader(ctx, rpcJoin, &command.JoinRequest{Member: m})
		return err
	}
	var applied *raftpb.ConfChangeV2
	for {
		cc, err := s.joinChange(m)
		if err != nil || cc == nil {
			return err
		}
		if applied != nil && proto.Equal(cc, applied) {
			// Committed, yet the membership does not hold m: every node cancelled the change (confcheck.go).
			return fmt.Errorf("the membership change for %s was cancelled: it would have left an invalid configuration", m.GetNodeId())
		}
		err = s.proposeConfChange(ctx, cc)
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

// joinChange is the conf change that makes the membership hold m, or nil if it already does.
func (s *Store) joinChange(m *command.Member) (*raftpb.ConfChangeV2, error) {
	id := m.GetRaftId()
	cs := s.members.confState()
	if old, ok := s.members.get(id); ok {
		if proto.Equal(old, m) {
			return nil, nil
		}
		if !m.GetVoter() && isVoter(cs, id) {
			if len(cs.GetVoters()) == 1 {
				return nil, fmt.Errorf("cannot make %s a non-voter: it is the only voter", m.GetNodeId())
			}
			return confChange([]*raftpb.ConfChangeSingle{change(raftpb.ConfChangeAddLearnerNode, id)}, m)
		}
		return confChange([]*raftpb.ConfChangeSingle{change(raftpb.ConfChangeUpdateNode, id)}, m)
	}
	changes := []*raftpb.ConfChangeSingle{}
	for _, old := range []func() (*command.Member, bool){
		func() (*command.Member, bool) { return s.members.byNodeID(m.GetNodeId()) },
		func() (*command.Member, bool) { return s.members.byRaftAddr(m.GetRaftAddr()) },
	} {
		o, ok := old()
		if !ok || slices.ContainsFunc(changes, func(c *raftpb.ConfChangeSingle) bool { return c.GetNodeId() == o.GetRaftId() }) {
			continue
		}
		if o.GetRaftId() == s.raftID || s.recentlyActive(o.GetRaftId()) {
			return nil, fmt.Errorf("node %s (address %s) is still an active member of the cluster under Raft ID %x; refusing to replace it with %x",
				o.GetNodeId(), o.GetRaftAddr(), o.GetRaftId(), id)
		}
		if isVoter(cs, o.GetRaftId()) && len(cs.GetVoters()) == 1 {
			return nil, fmt.Errorf("cannot replace %s: it is the only voter", o.GetNodeId())
		}
		changes = append(changes, change(raftpb.ConfChangeRemoveNode, o.GetRaftId()))
	}
	changes = append(changes, change(raftpb.ConfChangeAddLearnerNode, id))
	return confChange(changes, m)
}

// recentlyActive reports whether the leader has heard from id within the last election timeout.
func (s *Store) recentlyActive(id uint64) bool {
	active := false
	s.node.OnRaft(context.Background(), func(rn *raft.RawNode) {
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
func (s *Store) proposeConfChange(ctx context.Context, cc *raftpb.ConfChangeV2) error {
	s.confMu.Lock()
	defer s.confMu.Unlock()
	return s.node.ProposeConfChange(ctx, cc)
}

// Remove takes the node with the given node-id out of the cluster (on the leader; followers pass it on).
// It returns once the node is gone from the membership.
func (s *Store) Remove(ctx context.Context, nodeID string) error {
	for {
		if !s.IsLeader() {
			_, err := s.callLeader(ctx, rpcRemove, &command.RemoveRequest{NodeId: nodeID})
			return err
		}
		m, ok := s.members.byNodeID(nodeID)
		if !ok {
			return fmt.Errorf("%w: %s", errUnknownNode, nodeID)
		}
		cs := s.members.confState()
		if isVoter(cs, m.GetRaftId()) && len(cs.GetVoters()) == 1 {
			return fmt.Errorf("cannot remove %s: it is the only voter", nodeID)
		}
		if err := s.checkRemovalLeavesQuorum(ctx, m.GetRaftId(), nodeID); err != nil {
			return err
		}
		cc, err := confChange([]*raftpb.ConfChangeSingle{change(raftpb.ConfChangeRemoveNode, m.GetRaftId())})
		if err != nil {
			return err
		}
		err = s.proposeConfChange(ctx, cc)
		if _, still := s.members.get(m.GetRaftId()); !still {
			if m.GetRaftId() == s.raftID {
				// A leader that removed itself has stepped down by now (quorum.go).
				s.waitRemovalKnown(ctx, s.applied.Index())
			}
			return nil
		}
		if err != nil && !errors.Is(err, errConfDropped) && !errors.Is(err, ErrNotLeader) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove %s: %w", nodeID, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var errNoTransferee = errors.New("no other voter to hand leadership to")

// TransferLeadership hands leadership to the voter with the given Raft ID, or (0) to the most up-to-date
// other voter, and waits until it has moved.
func (s *Store) TransferLeadership(ctx context.Context, to uint64) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	var target uint64
	s.node.OnRaft(ctx, func(rn *raft.RawNode) {
		st := rn.Status()
		var best uint64
		for id, pr := range st.Progress {
			if id == s.raftID || pr.IsLearner {
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
			return fmt.Errorf("%x is not a voter that can take over", to)
		}
		return errNoTransferee
	}
	_, _, election := s.cfg.ticks()
	tick, _, _ := s.cfg.ticks()
	deadline := time.Now().Add(time.Duration(2*election) * tick)
	for time.Now().Before(deadline) {
		if l := s.node.Leader(); l != s.raftID && l != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("leadership did not move to %x in time", target)
}

// Stepdown makes the leader hand over leadership (to the node with nodeID, if given); a follower passes
// the request on to the leader.
func (s *Store) Stepdown(ctx context.Context, nodeID string, wait bool) error {
	if !s.IsLeader() {
		_, err := s.callLeader(ctx, rpcStepdown, &command.StepdownRequest{NodeId: nodeID, Wait: wait})
		return err
	}
	return s.stepdownLocal(ctx, nodeID, wait)
}

func (s *Store) stepdownLocal(ctx context.Context, nodeID string, wait bool) error {
	var to uint64
	if nodeID != "" {
		m, ok := s.members.byNodeID(nodeID)
		if !ok {
			return fmt.Errorf("%w: %s", errUnknownNode, nodeID)
		}
		if m.GetRaftId() == s.raftID {
			return errors.New("cannot step down to the current Leader") // rqlite's words
		}
		to = m.GetRaftId()
	}
	if !wait {
		go s.TransferLeadership(context.Background(), to)
		return nil
	}
	return s.TransferLeadership(ctx, to)
}

// joinCluster asks the -join targets, in turn, to add this node, trying every target up to attempts
// times with -join-interval between rounds.
func (s *Store) joinCluster(ctx context.Context, attempts int) error {
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.cfg.JoinInterval):
			}
		}
		for _, target := range s.cfg.Join {
			if err := s.joinThrough(ctx, target); err != nil {
				if errors.Is(err, ErrUnauthorized) {
					// Asking again changes nothing: the credentials are what they are.
					return fmt.Errorf("the cluster refused to let this node join: %w (give -join-as a user of the -auth file with the %s permission)",
						err, s.joinPermName())
				}
				lastErr = err
				s.log.Warn("join attempt failed", "target", target, "err", err)
				continue
			}
			s.logJoined(target)
			return nil
		}
	}
	return fmt.Errorf("failed to join cluster after %d attempts: %w", attempts, lastErr)
}

// joinPermName names the permission a join of this node needs.
func (s *Store) joinPermName() string {
	if s.cfg.Voter {
		return `"join"`
	}
	return `"join-read-only" (or "join")`
}

// logJoined says that the leader added this node. A voter is not one yet: it votes, and reports ready,
// once it has caught up and the leader has promoted it (applyConfChange says so then).
func (s *Store) logJoined(through string) {
	if s.cfg.Voter {
		s.log.Info("added to the cluster as a learner: this node becomes a voter once it has caught up", "through", through)
		return
	}
	s.log.Info("joined the cluster as a non-voting read replica", "through", through)
}

func (s *Store) joinThrough(ctx context.Context, target string) error {
	addr, err := s.resolveRaftAddr(ctx, target)
	if err != nil {
		return err
	}
	if addr == s.cfg.RaftAddr {
		return errors.New("cannot join through this node itself")
	}
	b, err := proto.Marshal(&command.JoinRequest{Member: s.selfMember(), ClusterId: s.clusterID.Load(), Credentials: s.cfg.JoinAs})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rb, err := s.tr.Call(cctx, addr, rpcJoin, b)
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
	if err := s.checkCluster(resp.GetClusterId(), "at "+addr); err != nil {
		return err
	}
	return s.setClusterID(resp.GetClusterId())
}

// resolveRaftAddr turns a -join target into a Raft address. A target may be a node's HTTP API
// (http://host:port, https://host:port, or a bare host:port that answers HTTP), whose /status reports the
// node's Raft address, or a Raft address.
func (s *Store) resolveRaftAddr(ctx context.Context, target string) (string, error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return s.raftAddrFromHTTP(ctx, target)
	}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := s.NodeMeta(mctx, target)
	cancel()
	if err == nil {
		return target, nil
	}
	scheme := "http://"
	if s.cfg.HTTPS {
		scheme = "https://" // a secured cluster: never send -join-as credentials in the clear
	}
	if addr, herr := s.raftAddrFromHTTP(ctx, scheme+target); herr == nil {
		return addr, nil
	}
	return "", fmt.Errorf("%s: not reachable as a Raft or HTTP address: %w", target, explainTLS(target, err))
}

func (s *Store) raftAddrFromHTTP(ctx context.Context, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/status?key=store.addr", nil)
	if err != nil {
		return "", err
	}
	if c := s.cfg.JoinAs; c != nil {
		req.SetBasicAuth(c.GetUsername(), c.GetPassword())
	}
	client := s.cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var addr string
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/status: %s", base, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&addr); err != nil || addr == "" {
		return "", fmt.Errorf("GET %s/status: no store.addr in the answer", base)
	}
	return addr, nil
}

// bootstrapOrRejoin starts a first node that has no data. If the cluster it belonged to before its data
// was wiped is still running, that cluster keeps sending it raft traffic addressed to its old identity
// (peers redial within half a second); AcceptStream then reports where it came from and the node rejoins
// through it. Only if no such contact comes within the grace period does it bootstrap a new cluster.
func (s *Store) bootstrapOrRejoin(ctx context.Context) error {
	timer := time.NewTimer(s.cfg.BootstrapGrace)
	defer timer.Stop()
	select {
	case addr := <-s.contact:
		s.log.Warn("an existing cluster knows this node-id: this node lost its data; rejoining", "through", addr)
		s.cfg.Join = []string{addr}
		// The cluster is there; keep trying until it takes this node back (it first waits for the old
		// identity to go quiet).
		if err := s.joinCluster(ctx, 1<<30); err != nil {
			return err
		}
		return s.startRaft(nil)
	case <-timer.C:
		return s.bootstrap([]*command.Member{s.selfMember()})
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) bootstrap(members []*command.Member) error {
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
	if err := s.setClusterID(id); err != nil {
		return err
	}
	s.log.Info("bootstrapping new cluster", "members", len(members), "cluster_id", fmt.Sprintf("%x", id))
	return s.startRaft(peers)
}

func (s *Store) notify(m *command.Member) {
	if m.GetNodeId() == "" || m.GetRaftId() == 0 {
		return
	}
	s.notifiedMu.Lock()
	defer s.notifiedMu.Unlock()
	s.notified[m.GetNodeId()] = m
}

func (s *Store) notifiedMembers() []*command.Member {
	s.notifiedMu.Lock()
	defer s.notifiedMu.Unlock()
	out := make([]*command.Member, 0, len(s.notified))
	for _, m := range s.notified {
		out = append(out, m)
	}
	return out
}

// bootstrapExpect forms one cluster out of BootstrapExpect nodes started together with the same -join
// list: each tries to join; failing that, it announces itself to every target; once a node has heard from
// enough distinct nodes (itself included), it bootstraps with exactly those. Every node that does so
// builds the same initial configuration, since each member describes itself identically to all.
func (s *Store) bootstrapExpect(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.BootstrapExpectTimeout)
	self := s.selfMember()
	s.notify(self)
	announce, err := proto.Marshal(&command.NotifyRequest{Member: self, Credentials: s.cfg.JoinAs})
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		for _, target := range s.cfg.Join {
			if err := s.joinThrough(ctx, target); err == nil {
				s.logJoined(target)
				return s.startRaft(nil)
			}
		}
		for _, target := range s.cfg.Join {
			addr, err := s.resolveRaftAddr(ctx, target)
			if err != nil || addr == s.cfg.RaftAddr {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s.tr.Call(cctx, addr, rpcNotify, announce)
			cancel()
		}
		if ms := s.notifiedMembers(); len(ms) >= s.cfg.BootstrapExpect {
			return s.bootstrap(ms)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(500+rand.IntN(500)) * time.Millisecond):
		}
	}
	return fmt.Errorf("bootstrap-expect %d: timed out after %s with %d nodes", s.cfg.BootstrapExpect,
		s.cfg.BootstrapExpectTimeout, len(s.notifiedMembers()))
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
