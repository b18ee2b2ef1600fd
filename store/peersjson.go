package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
)

// Recovering from a lost quorum. When a majority of the voters is gone for good, Raft cannot commit
// anything, a membership change included: the survivors need an operator. As with rqlite, the operator
// writes the nodes that remain into <data>/raft/peers.json on each of them,
//
//	[{"id": "n1", "address": "host:4002", "non_voter": false}, ...]
//
// and starts them. Each survivor then, before it runs raft:
//
//  1. publishes its log position (last term and index, commit index) and waits until every node the file
//     lists answers with the same file;
//  2. refuses if a majority of the voters of its last configuration is reachable: that cluster needs no
//     recovery, and recovering would split it (-raft-recover-force overrides);
//  3. picks the survivor with the most up-to-date log (last term, then last index, then node-id), as an
//     election would: every entry a survivor knows committed is in that log, except in a history where
//     the lost majority alone held it, which no method can bring back;
//  4. on that node only, counts every entry of its log as committed and appends one conf change per
//     member to drop, promote or demote, so that the configuration becomes exactly the listed nodes (one
//     voter change per entry, as raft allows without a quorum of the old configuration);
//  5. moves every survivor to a new cluster ID, so that a lost node that comes back with its old data is
//     refused instead of rejoining the old history, and renames peers.json to peers.info.
//
// The other survivors keep their data and Raft IDs: the chosen node becomes leader and brings them up to
// its log, and raft drops any entry of theirs that it lacks, which was never known committed. A survivor
// that knows an entry committed which the chosen node lacks (possible only when the lost nodes alone held
// it) cannot be reconciled: it is left out of the new configuration and stops, saying how to rejoin
// empty.
//
// etcd's --force-new-cluster is the single-survivor case of this: it also commits the survivor's whole log
// and appends conf changes that remove every other member. etcd has no multi-survivor form; its
// answer is a snapshot restore on every node. peers.json with several survivors needs every listed node
// up at once; with one, it is exactly --force-new-cluster.

const (
	peersFile       = "peers.json"
	peersDoneFile   = "peers.info"
	peersGatherTime = 5 * time.Minute
)

// peerEntry is one node of peers.json, in rqlite's format.
type peerEntry struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	NonVoter bool   `json:"non_voter"`
}

// recoveryState is what a survivor tells the others while it recovers (rpcRecoverState, JSON), with its
// log position from before it changed anything; it keeps answering after it is done, for slower peers.
type recoveryState struct {
	NodeID     string `json:"node_id"`
	RaftID     uint64 `json:"raft_id"`
	Digest     string `json:"digest"` // of the peers.json it recovers with
	LastTerm   uint64 `json:"last_term"`
	LastIndex  uint64 `json:"last_index"`
	Commit     uint64 `json:"commit"`
	CommitTerm uint64 `json:"commit_term"`
	// TermAt is the term of the entry at the index the caller asked about; Compacted means that index is
	// at or below this node's snapshot (committed, so it agrees with every log).
	TermAt    uint64 `json:"term_at"`
	Compacted bool   `json:"compacted"`
}

func (s *Store) peersPath() string { return filepath.Join(s.cfg.DataDir, "raft", peersFile) }

// readPeersFile reads and checks peers.json.
func readPeersFile(path string) ([]peerEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return parsePeers(path, b)
}

// parsePeers checks the content of peers.json; path names it in errors.
func parsePeers(path string, b []byte) ([]peerEntry, error) {
	var peers []peerEntry
	if err := json.Unmarshal(b, &peers); err != nil {
		return nil, fmt.Errorf("%s: not a JSON array of {\"id\", \"address\", \"non_voter\"}: %w", path, err)
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("%s lists no nodes", path)
	}
	ids, addrs := map[string]bool{}, map[string]bool{}
	for _, p := range peers {
		if p.ID == "" || p.Address == "" {
			return nil, fmt.Errorf("%s: every node needs an \"id\" and an \"address\" (its Raft address)", path)
		}
		if ids[p.ID] || addrs[p.Address] {
			return nil, fmt.Errorf("%s lists node %s (address %s) twice", path, p.ID, p.Address)
		}
		ids[p.ID], addrs[p.Address] = true, true
	}
	return peers, nil
}

// peersDigest identifies a peers.json by its content, whatever its order and spacing.
func peersDigest(peers []peerEntry) string {
	sorted := slices.Clone(peers)
	slices.SortFunc(sorted, func(a, b peerEntry) int { return strings.Compare(a.ID, b.ID) })
	b, _ := json.Marshal(sorted)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// recoverFromPeersFile runs the recovery above if peers.json is present. It returns before raft starts.
func (s *Store) recoverFromPeersFile(ctx context.Context) error {
	path := s.peersPath()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	peers, err := readPeersFile(path)
	if err != nil {
		return err
	}
	self := slices.IndexFunc(peers, func(p peerEntry) bool { return p.ID == s.cfg.NodeID || p.Address == s.cfg.RaftAddr })
	if self < 0 {
		return fmt.Errorf("%s does not list this node (id %s, address %s): list every node that survives, this one included", path, s.cfg.NodeID, s.cfg.RaftAddr)
	}
	mine, err := s.logPosition(peersDigest(peers))
	if err != nil {
		return err
	}
	s.recovery.Store(&mine)
	s.log.Warn("peers.json found: recovering from a lost quorum; waiting for every listed node", "file", path, "nodes", len(peers))

	states, err := s.gatherRecoveryStates(ctx, peers, self, mine)
	if err != nil {
		return err
	}
	cfg, err := s.logConfiguration()
	if err != nil {
		return err
	}
	if err := s.checkQuorumLost(ctx, cfg, states); err != nil {
		return err
	}
	source := chooseSource(states)
	newCluster := recoveredClusterID(source)
	if source.RaftID == s.raftID {
		if err := s.rewriteConfiguration(cfg, peers, states); err != nil {
			return err
		}
	} else if !s.agreesWith(ctx, source, peers) {
		return fmt.Errorf("peers.json recovery: this node knows entries committed that %s, the survivor with the most up-to-date log, lacks (only the lost nodes held them): it cannot rejoin with its data. Move its data directory aside and start it with -join %s to rejoin empty",
			source.NodeID, peers[slices.IndexFunc(peers, func(p peerEntry) bool { return p.ID == source.NodeID })].Address)
	}
	if err := s.setClusterID(newCluster); err != nil {
		return err
	}
	if err := os.Rename(path, filepath.Join(filepath.Dir(path), peersDoneFile)); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	if err := syncPath(filepath.Dir(path)); err != nil {
		return err
	}
	s.log.Warn("peers.json recovery done: the cluster is now the listed nodes, under a new cluster ID; nodes that were lost must rejoin empty",
		"log_from", source.NodeID, "last_index", source.LastIndex, "cluster_id", fmt.Sprintf("%x", newCluster))
	return nil
}

// logPosition is this node's part of the recovery: its log's position.
func (s *Store) logPosition(digest string) (recoveryState, error) {
	hs, _, err := s.rlog.InitialState()
	if err != nil {
		return recoveryState{}, err
	}
	last, _ := s.rlog.LastIndex()
	lastTerm, err := s.rlog.Term(last)
	if err != nil {
		return recoveryState{}, fmt.Errorf("peers.json recovery: term of the last entry %d: %w", last, err)
	}
	commitTerm, _ := s.rlog.Term(hs.GetCommit()) // 0 when compacted: the commit is then below the snapshot
	return recoveryState{NodeID: s.cfg.NodeID, RaftID: s.raftID, Digest: digest, LastTerm: lastTerm, LastIndex: last,
		Commit: hs.GetCommit(), CommitTerm: commitTerm}, nil
}

// serveRecoveryState answers another survivor: this node's position, and its term at the index asked.
func (s *Store) serveRecoveryState(req []byte) ([]byte, error) {
	st := s.recovery.Load()
	if st == nil {
		return nil, errors.New("this node is not recovering with peers.json")
	}
	var ask struct {
		Index uint64 `json:"index"`
	}
	if err := json.Unmarshal(req, &ask); err != nil {
		return nil, fmt.Errorf("decode recovery state request: %w", err)
	}
	out := *st
	snap, _ := s.rlog.Snapshot()
	if ask.Index <= snap.GetMetadata().GetIndex() {
		out.Compacted = true
	} else if t, err := s.rlog.Term(ask.Index); err == nil {
		out.TermAt = t
	}
	return json.Marshal(out)
}

// askRecoveryState asks the survivor at addr for its state and its term at index.
func (s *Store) askRecoveryState(ctx context.Context, addr string, index uint64) (recoveryState, error) {
	req, _ := json.Marshal(map[string]uint64{"index": index})
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := s.tr.Call(cctx, addr, rpcRecoverState, req)
	if err != nil {
		return recoveryState{}, err
	}
	var st recoveryState
	if err := json.Unmarshal(b, &st); err != nil {
		return recoveryState{}, fmt.Errorf("decode recovery state from %s: %w", addr, err)
	}
	return st, nil
}

// gatherRecoveryStates waits until every listed node answers with the same peers.json.
func (s *Store) gatherRecoveryStates(ctx context.Context, peers []peerEntry, self int, mine recoveryState) ([]recoveryState, error) {
	states := map[string]recoveryState{peers[self].ID: mine}
	deadline := time.Now().Add(peersGatherTime)
	lastSaid := time.Now()
	for len(states) < len(peers) {
		var missing []string
		for _, p := range peers {
			if _, ok := states[p.ID]; ok {
				continue
			}
			st, err := s.askRecoveryState(ctx, p.Address, mine.Commit)
			switch {
			case err != nil:
				missing = append(missing, fmt.Sprintf("%s (%v)", p.ID, err))
			case st.Digest != mine.Digest:
				return nil, fmt.Errorf("peers.json recovery: node %s at %s recovers with a different peers.json: put the same file on every listed node", p.ID, p.Address)
			case st.NodeID != p.ID:
				return nil, fmt.Errorf("peers.json recovery: the node at %s is %s, not %s as peers.json says", p.Address, st.NodeID, p.ID)
			default:
				states[p.ID] = st
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("peers.json recovery: these listed nodes did not answer within %s: %s; start every listed node with the same peers.json, or list only the nodes that survive",
				peersGatherTime, strings.Join(missing, "; "))
		}
		if time.Since(lastSaid) > 10*time.Second {
			lastSaid = time.Now()
			s.log.Warn("peers.json recovery: waiting for listed nodes", "missing", strings.Join(missing, "; "))
		}
		if !s.sleepUnlessStopped(200 * time.Millisecond) {
			return nil, ErrStopped
		}
	}
	out := make([]recoveryState, 0, len(states))
	for _, st := range states {
		out = append(out, st)
	}
	return out, nil
}

// chooseSource is the survivor whose log an election would prefer: last term, then last index; the
// node-id breaks a tie, so that every survivor chooses the same one.
func chooseSource(states []recoveryState) recoveryState {
	best := states[0]
	for _, st := range states[1:] {
		if st.LastTerm > best.LastTerm || (st.LastTerm == best.LastTerm &&
			(st.LastIndex > best.LastIndex || (st.LastIndex == best.LastIndex && st.NodeID > best.NodeID))) {
			best = st
		}
	}
	return best
}

// recoveredClusterID names the cluster a recovery makes; every survivor derives the same one.
func recoveredClusterID(source recoveryState) uint64 {
	h := sha256.New()
	h.Write([]byte("peers.json recovery"))
	for _, v := range []uint64{source.RaftID, source.LastTerm, source.LastIndex} {
		h.Write(binary.BigEndian.AppendUint64(nil, v))
	}
	if id := binary.BigEndian.Uint64(h.Sum(nil)) >> 1; id != 0 {
		return id
	}
	return 1
}

// logConfig is the configuration a log ends with, and the members it knows.
type logConfig struct {
	voters, learners map[uint64]bool
	members          map[uint64]*command.Member
}

// logConfiguration replays the conf changes of this node's log over its last snapshot's configuration and
// the database's membership.
func (s *Store) logConfiguration() (logConfig, error) {
	_, cs, err := s.rlog.InitialState()
	if err != nil {
		return logConfig{}, err
	}
	cfg := logConfig{voters: map[uint64]bool{}, learners: map[uint64]bool{}, members: map[uint64]*command.Member{}}
	for _, id := range append(cs.GetVoters(), cs.GetVotersOutgoing()...) {
		cfg.voters[id] = true
	}
	for _, id := range append(cs.GetLearners(), cs.GetLearnersNext()...) {
		cfg.learners[id] = true
	}
	for _, m := range s.members.list() {
		cfg.members[m.RaftID] = &command.Member{RaftId: m.RaftID, NodeId: m.NodeID, RaftAddr: m.RaftAddr, HttpAddr: m.HTTPAddr, Voter: m.WantsVote}
	}
	snap, _ := s.rlog.Snapshot()
	last, _ := s.rlog.LastIndex()
	from := snap.GetMetadata().GetIndex() + 1
	if from > last {
		return cfg, nil
	}
	ents, err := s.rlog.Entries(from, last+1, math.MaxUint64)
	if err != nil {
		return logConfig{}, fmt.Errorf("peers.json recovery: read the log: %w", err)
	}
	for _, e := range ents {
		if e.GetType() != raftpb.EntryConfChange && e.GetType() != raftpb.EntryConfChangeV2 {
			continue
		}
		_, changes, added, err := decodeConfChange(e)
		if err != nil {
			continue // every node skipped it alike
		}
		for _, m := range added {
			cfg.members[m.GetRaftId()] = m
		}
		for _, c := range changes {
			id := c.GetNodeId()
			switch c.GetType() {
			case raftpb.ConfChangeAddNode:
				cfg.voters[id], cfg.learners[id] = true, false
			case raftpb.ConfChangeAddLearnerNode:
				cfg.voters[id], cfg.learners[id] = false, true
			case raftpb.ConfChangeRemoveNode:
				delete(cfg.voters, id)
				delete(cfg.learners, id)
				delete(cfg.members, id)
			}
		}
	}
	for id, v := range cfg.voters {
		if !v {
			delete(cfg.voters, id)
		}
	}
	for id, l := range cfg.learners {
		if !l {
			delete(cfg.learners, id)
		}
	}
	return cfg, nil
}

// checkQuorumLost refuses a recovery while a majority of the last configuration's voters is reachable:
// the survivors (all up by now) and any other voter that answers.
func (s *Store) checkQuorumLost(ctx context.Context, cfg logConfig, states []recoveryState) error {
	surviving := map[uint64]bool{}
	for _, st := range states {
		surviving[st.RaftID] = true
	}
	var reachable []string
	for id := range cfg.voters {
		name := fmt.Sprintf("%x", id)
		m, known := cfg.members[id]
		if known {
			name = m.GetNodeId()
		}
		if surviving[id] {
			reachable = append(reachable, name)
			continue
		}
		if !known || m.GetRaftAddr() == "" {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := s.NodeMeta(cctx, m.GetRaftAddr())
		cancel()
		if err == nil {
			reachable = append(reachable, name)
		}
	}
	need := len(cfg.voters)/2 + 1
	if len(reachable) < need {
		return nil
	}
	slices.Sort(reachable)
	if s.cfg.RecoverForce {
		s.log.Warn("peers.json recovery forced although a majority of the voters is reachable", "reachable", strings.Join(reachable, ", "))
		return nil
	}
	return fmt.Errorf("peers.json recovery refused: %d of the %d voters of the cluster's configuration are reachable (%s), a majority: this cluster has a quorum and needs no recovery, and recovering would split it. Remove %s and start the node normally (remove lost nodes with DELETE /remove); -raft-recover-force overrides this check",
		len(reachable), len(cfg.voters), strings.Join(reachable, ", "), s.peersPath())
}

// agreesWith (a survivor that is not the source) checks that the source's log holds the entry this node
// knows committed last: then raft can bring this node up to the source's log, dropping only entries that
// were never known committed.
func (s *Store) agreesWith(ctx context.Context, source recoveryState, peers []peerEntry) bool {
	mine := s.recovery.Load()
	if mine.Commit == 0 {
		return true
	}
	addr := peers[slices.IndexFunc(peers, func(p peerEntry) bool { return p.ID == source.NodeID })].Address
	for attempt := 0; attempt < 50; attempt++ {
		st, err := s.askRecoveryState(ctx, addr, mine.Commit)
		if err == nil {
			return st.Compacted || st.TermAt == mine.CommitTerm
		}
		if !s.sleepUnlessStopped(200 * time.Millisecond) {
			return false
		}
	}
	return false
}

// rewriteConfiguration (the source) counts its whole log as committed and appends the conf changes that
// make the configuration exactly the listed survivors that agree with its log.
func (s *Store) rewriteConfiguration(cfg logConfig, peers []peerEntry, states []recoveryState) error {
	byNode := map[string]recoveryState{}
	for _, st := range states {
		byNode[st.NodeID] = st
	}
	snap, _ := s.rlog.Snapshot()
	keep := map[uint64]bool{} // listed survivors to keep, and whether they vote
	for _, p := range peers {
		st := byNode[p.ID]
		if !cfg.voters[st.RaftID] && !cfg.learners[st.RaftID] {
			return fmt.Errorf("peers.json lists %s, which is not a member of the cluster's last configuration", p.ID)
		}
		if st.RaftID == s.raftID && p.NonVoter {
			return fmt.Errorf("peers.json lists %s as a non-voter, but it holds the most up-to-date log and must vote", p.ID)
		}
		if st.RaftID != s.raftID && st.Commit > snap.GetMetadata().GetIndex() {
			if t, err := s.rlog.Term(st.Commit); err != nil || t != st.CommitTerm {
				s.log.Error("peers.json recovery: a survivor knows entries committed that this log lacks; it is left out and must rejoin empty", "node", p.ID)
				continue
			}
		}
		keep[st.RaftID] = !p.NonVoter
	}
	var changes []*raftpb.ConfChangeSingle
	for _, id := range sortedIDs(cfg.voters, cfg.learners) {
		vote, kept := keep[id]
		switch {
		case !kept:
			changes = append(changes, change(raftpb.ConfChangeRemoveNode, id))
		case vote && !cfg.voters[id]:
			changes = append(changes, change(raftpb.ConfChangeAddNode, id))
		case !vote && cfg.voters[id]:
			changes = append(changes, change(raftpb.ConfChangeAddLearnerNode, id))
		}
	}
	hs, _, err := s.rlog.InitialState()
	if err != nil {
		return err
	}
	last, _ := s.rlog.LastIndex()
	lastTerm, err := s.rlog.Term(last)
	if err != nil {
		return err
	}
	ents := make([]*raftpb.Entry, 0, len(changes))
	for k, c := range changes {
		data, err := proto.Marshal(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{c}})
		if err != nil {
			return err
		}
		ents = append(ents, &raftpb.Entry{Type: raftpb.EntryConfChangeV2.Enum(), Term: new(lastTerm), Index: new(last + uint64(k) + 1), Data: data})
	}
	commit := last + uint64(len(ents))
	newHS := &raftpb.HardState{Term: new(max(hs.GetTerm(), lastTerm)), Vote: new(hs.GetVote()), Commit: new(commit)}
	if err := s.rlog.Save(newHS, ents, true); err != nil {
		return fmt.Errorf("peers.json recovery: write the new configuration to the Raft log: %w", err)
	}
	s.log.Warn("peers.json recovery: this node holds the most up-to-date log; every entry in it now counts as committed, and the configuration becomes the listed nodes",
		"last_index", last, "committed_now", commit-hs.GetCommit(), "membership_changes", len(changes))
	return nil
}

func sortedIDs(sets ...map[uint64]bool) []uint64 {
	var out []uint64
	for _, set := range sets {
		for id := range set {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}
