package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/internal/fsync"
)

// The source's part of a peers.json recovery (peersjson.go): the decision, and carrying it out.

// decision is what the source decided, recorded in peers.decided on every survivor before anything
// changes, so that a restart half-way resumes it.
type decision struct {
	Source       string `json:"source"`
	SourceRaftID uint64 `json:"source_raft_id"`
	ClusterID    uint64 `json:"cluster_id"`
	// From is the source's last log index before it appended Changes.
	From    uint64          `json:"from"`
	Changes []plannedChange `json:"changes,omitempty"`
	Refused string          `json:"refused,omitempty"`
}

// plannedChange is one conf change entry the source appends: one voter change each, which raft applies
// without a quorum of the old configuration.
type plannedChange struct {
	Leave  bool            `json:"leave_joint,omitempty"`
	Type   string          `json:"type,omitempty"` // "voter", "learner" or "remove"
	RaftID uint64          `json:"raft_id,omitempty"`
	Member *command.Member `json:"member,omitempty"`
}

func (r *recoverer) decidedPath() string {
	return filepath.Join(r.cl.cfg.DataDir, "raft", peersDecided)
}

func readDecision(path string) (*decision, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var d decision
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): remove it and start the recovery again", path, err)
	}
	return &d, nil
}

func writeDecision(path string, d *decision) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("record the peers.json decision: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("record the peers.json decision: %w", err)
	}
	return fsync.Path(filepath.Dir(path))
}

// chooseSource finds the highest commit index any survivor knows; among the survivors whose log holds
// that entry, it takes the one an election would prefer (last term, last index), the node-id breaking a
// tie, so that every survivor chooses the same one.
func (r *recoverer) chooseSource(ctx context.Context, peers []peerEntry, states map[string]recoveryState) (recoveryState, error) {
	var top recoveryState
	for _, st := range states {
		if st.Commit > top.Commit {
			top = st
		}
	}
	var candidates []recoveryState
	for _, p := range peers {
		st := states[p.ID]
		holds := top.Commit == 0 || st.NodeID == top.NodeID
		if !holds && st.RaftID == r.cl.raftID {
			term, compacted := r.termAt(top.Commit)
			holds = compacted || term == top.CommitTerm
		} else if !holds {
			answer, err := r.askRecoveryState(ctx, p.Address, top.Commit)
			if err != nil {
				return recoveryState{}, fmt.Errorf("%w: ask %s about entry %d: %w", errRecovery, p.ID, top.Commit, err)
			}
			holds = answer.holds(top.CommitTerm)
		}
		if holds {
			candidates = append(candidates, st)
		}
	}
	return mostUpToDate(candidates), nil
}

// mostUpToDate is the state whose log an election would prefer: last term, then last index; the node-id
// breaks a tie.
func mostUpToDate(states []recoveryState) recoveryState {
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

// logConfig is the configuration this node's log ends with (joint, perhaps), and the members it knows.
type logConfig struct {
	cs      *raftpb.ConfState
	members map[uint64]*command.Member
}

// logConfiguration replays the conf changes of this node's log, as raft will, over its last snapshot's
// configuration, and the members they add over the database's membership.
func (r *recoverer) logConfiguration() (logConfig, error) {
	_, cs, err := r.cl.rlog.InitialState()
	if err != nil {
		return logConfig{}, err
	}
	cfg := logConfig{cs: cs, members: map[uint64]*command.Member{}}
	for _, m := range r.cl.members.List() {
		cfg.members[m.RaftID] = &command.Member{RaftId: m.RaftID, NodeId: m.NodeID, RaftAddr: m.RaftAddr, HttpAddr: m.HTTPAddr, Voter: m.WantsVote}
	}
	snap, _ := r.cl.rlog.Snapshot()
	last, _ := r.cl.rlog.LastIndex()
	from := snap.GetMetadata().GetIndex() + 1
	if from > last {
		return cfg, nil
	}
	ents, err := r.cl.rlog.Entries(from, last+1, math.MaxUint64)
	if err != nil {
		return logConfig{}, fmt.Errorf("%w: read the log: %w", errRecovery, err)
	}
	if cfg.cs, err = replayConf(cs, ents); err != nil {
		return logConfig{}, fmt.Errorf("%w: replay the configuration: %w", errRecovery, err)
	}
	dbApplied := r.cl.dbApplied()
	for _, e := range ents {
		if e.GetIndex() <= dbApplied || (e.GetType() != raftpb.EntryConfChange && e.GetType() != raftpb.EntryConfChangeV2) {
			continue
		}
		if _, changes, added, err := decodeConfChange(e); err == nil {
			for _, m := range added {
				cfg.members[m.GetRaftId()] = m
			}
			for _, c := range changes {
				if c.GetType() == raftpb.ConfChangeRemoveNode {
					delete(cfg.members, c.GetNodeId())
				}
			}
		}
	}
	return cfg, nil
}

// decide (the source) checks that the quorum is really lost and plans the conf changes that make the
// configuration exactly the listed survivors that agree with its log.
func (r *recoverer) decide(ctx context.Context, peers []peerEntry, states map[string]recoveryState) (*decision, error) {
	cfg, err := r.logConfiguration()
	if err != nil {
		return nil, err
	}
	if err := r.checkQuorumLost(ctx, cfg, states); err != nil {
		return nil, err
	}
	voters := setOf(append(cfg.cs.GetVoters(), cfg.cs.GetVotersOutgoing()...))
	learners := setOf(append(cfg.cs.GetLearners(), cfg.cs.GetLearnersNext()...))
	wantVote := map[uint64]bool{} // the listed survivors kept, and whether they vote
	for _, p := range peers {
		st := states[p.ID]
		if !voters[st.RaftID] && !learners[st.RaftID] {
			return nil, fmt.Errorf("peers.json lists %s, which is not a member of the cluster's last configuration", p.ID)
		}
		if st.RaftID == r.cl.raftID && p.NonVoter {
			return nil, fmt.Errorf("peers.json lists %s as a non-voter, but it holds the most up-to-date log and must vote", p.ID)
		}
		if st.RaftID != r.cl.raftID && st.Commit > 0 {
			if term, compacted := r.termAt(st.Commit); !compacted && term != st.CommitTerm {
				r.cl.log.Error("peers.json recovery: a survivor knows entries committed that this log lacks; it is left out and must rejoin empty", "survivor", p.ID)
				continue
			}
		}
		wantVote[st.RaftID] = !p.NonVoter
	}
	last, _ := r.cl.rlog.LastIndex()
	mine := states[r.cl.cfg.NodeID]
	return &decision{Source: r.cl.cfg.NodeID, SourceRaftID: r.cl.raftID, ClusterID: recoveredClusterID(mine), From: last,
		Changes: planChanges(cfg, wantVote)}, nil
}

// planChanges lists the conf changes that turn the configuration cfg into exactly the members of
// wantVote, voting or not as it says. Each entry changes one voter, which raft applies without a quorum
// of the old configuration; a joint configuration is left first, since raft takes no simple change in
// one. Promotions come first, then demotions, then removals, so that no step leaves the configuration
// without a voter. The entries carry the members' records with their new suffrage, so that the leader
// does not promote a demoted node back (or the other way round).
func planChanges(cfg logConfig, wantVote map[uint64]bool) []plannedChange {
	voters := setOf(cfg.cs.GetVoters())
	learners := setOf(append(cfg.cs.GetLearners(), cfg.cs.GetLearnersNext()...))
	var out []plannedChange
	if len(cfg.cs.GetVotersOutgoing()) > 0 {
		out = append(out, plannedChange{Leave: true})
	}
	member := func(id uint64, vote bool) *command.Member {
		m := &command.Member{RaftId: id}
		if known, ok := cfg.members[id]; ok {
			m = proto.Clone(known).(*command.Member)
		}
		m.Voter = vote
		return m
	}
	for _, id := range sortedKeys(wantVote) {
		if wantVote[id] && !voters[id] {
			out = append(out, plannedChange{Type: "voter", RaftID: id, Member: member(id, true)})
		}
	}
	for _, id := range sortedKeys(wantVote) {
		if !wantVote[id] && !learners[id] {
			out = append(out, plannedChange{Type: "learner", RaftID: id, Member: member(id, false)})
		}
	}
	for _, id := range sortedKeys(voters, learners) {
		if _, kept := wantVote[id]; !kept {
			out = append(out, plannedChange{Type: "remove", RaftID: id})
		}
	}
	return out
}

// checkQuorumLost refuses a recovery while a quorum of the last configuration is reachable: the survivors
// (all up by now) and any other voter that answers. A joint configuration needs a majority of both sides.
func (r *recoverer) checkQuorumLost(ctx context.Context, cfg logConfig, states map[string]recoveryState) error {
	surviving := map[uint64]bool{}
	for _, st := range states {
		surviving[st.RaftID] = true
	}
	reachable := map[uint64]bool{}
	var names []string
	for _, id := range sortedKeys(setOf(cfg.cs.GetVoters()), setOf(cfg.cs.GetVotersOutgoing())) {
		m, known := cfg.members[id]
		up := surviving[id]
		if !up && known && m.GetRaftAddr() != "" {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := r.cl.calls.NodeMeta(cctx, m.GetRaftAddr())
			cancel()
			up = err == nil
		}
		if up {
			reachable[id] = true
			names = append(names, cmpName(m, id))
		}
	}
	quorum := func(ids []uint64) bool {
		n := 0
		for _, id := range ids {
			if reachable[id] {
				n++
			}
		}
		return len(ids) == 0 || n >= len(ids)/2+1
	}
	if !quorum(cfg.cs.GetVoters()) || !quorum(cfg.cs.GetVotersOutgoing()) {
		return nil
	}
	if r.cl.cfg.RecoverForce {
		r.cl.log.Warn("peers.json recovery forced although a quorum of the voters is reachable", "reachable", strings.Join(names, ", "))
		return nil
	}
	return fmt.Errorf("peers.json recovery refused: %d of the %d voters of the cluster's configuration are reachable (%s), a quorum: this cluster needs no recovery, and recovering would split it. Remove %s and start the node normally (remove lost nodes with DELETE /remove); -raft-recover-force overrides this check",
		len(reachable), len(cfg.cs.GetVoters()), strings.Join(names, ", "), r.peersPath())
}

// carryOut executes a decision: the source appends its conf changes (unless a run before a crash did),
// every survivor takes the new cluster ID, and the files are renamed.
func (r *recoverer) carryOut(d *decision) error {
	if d.SourceRaftID == r.cl.raftID {
		if last, _ := r.cl.rlog.LastIndex(); last == d.From {
			if err := r.appendChanges(d); err != nil {
				return err
			}
		}
	}
	if err := r.cl.setClusterID(d.ClusterID); err != nil {
		return err
	}
	dir := filepath.Dir(r.peersPath())
	if err := os.Rename(r.peersPath(), filepath.Join(dir, peersDoneFile)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("rename %s: %w", r.peersPath(), err)
	}
	if err := os.Remove(r.decidedPath()); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := fsync.Path(dir); err != nil {
		return err
	}
	r.cl.log.Warn("peers.json recovery done: the cluster is now the listed nodes, under a new cluster ID; lost nodes must rejoin empty",
		"history_from", d.Source, "cluster_id", fmt.Sprintf("%x", d.ClusterID))
	return nil
}

// appendChanges (the source) counts its whole log as committed and appends the decision's conf changes,
// committed too.
func (r *recoverer) appendChanges(d *decision) error {
	hs, _, err := r.cl.rlog.InitialState()
	if err != nil {
		return err
	}
	lastTerm, err := r.cl.rlog.Term(d.From)
	if err != nil {
		return err
	}
	ents, err := changeEntries(d.Changes, d.From, lastTerm)
	if err != nil {
		return err
	}
	commit := d.From + uint64(len(ents))
	newHS := &raftpb.HardState{Term: new(max(hs.GetTerm(), lastTerm)), Vote: new(hs.GetVote()), Commit: new(commit)}
	if err := r.cl.rlog.Save(newHS, ents, true); err != nil {
		return fmt.Errorf("%w: write the new configuration to the Raft log: %w", errRecovery, err)
	}
	r.cl.log.Warn("peers.json recovery: this node holds the cluster's history; every entry of its log now counts as committed, and the configuration becomes the listed nodes",
		"last_index", d.From, "committed_now", commit-hs.GetCommit(), "membership_changes", len(ents))
	return nil
}
