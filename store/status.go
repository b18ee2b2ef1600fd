package store

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/extension"
	"go.etcd.io/raft/v3"
)

// Member is one node of the cluster as the API reports it.
type Member = cluster.Member

// Status is what /status reports about the store.
type Status struct {
	// Extensions are the SQLite extensions the node loads (empty Names for none).
	Extensions extension.Set
	// AppliedTerm is the term of the last applied entry; LastLogTerm that of the last entry in the log.
	AppliedTerm, LastLogTerm uint64
	// ReapTimeout and ReapReadOnlyTimeout are -raft-reap-node-timeout and -raft-reap-read-only-node-timeout.
	ReapTimeout, ReapReadOnlyTimeout time.Duration
	// SnapshotDir holds snapshots while they are sent or received.
	SnapshotDir string
	NodeID      string
	RaftID      uint64
	ClusterID   uint64 // 0 until the node has bootstrapped or joined a cluster
	RaftAddr    string
	HTTPURL     string
	Open        bool // the raft loop runs
	Ready       bool // can serve: open, a leader is known, a voter if it asked to be, no fault
	// NotReady says why Ready is false ("" when it is true).
	NotReady string
	// Fault is why this node serves nothing now (its disk refuses writes), or "".
	Fault string
	// Applying is the statement of a committed entry the database runs now (every write waits for it).
	Applying              *Applying
	ApplyStepLimit        int64 // the step bound this node gives the writes it proposes as leader
	SlowApply             time.Duration
	State                 string
	Voter                 bool
	Leader                LeaderInfo
	Term                  uint64
	CommitIndex           uint64
	AppliedIndex          uint64
	DBApplied             uint64
	LastLogIndex          uint64
	FirstLogIndex         uint64
	SnapshotIndex         uint64
	SnapshotTerm          uint64
	LogSegments           int
	LogBytes              int64
	DBSize                int64
	WALSize               int64
	Members               []Member
	LastContact           time.Duration // since the leader was last heard from; 0 on the leader
	Uptime                time.Duration
	DataDir               string
	DBPath                string
	ForeignKeys           bool
	SnapshotThreshold     uint64
	SnapshotInterval      time.Duration
	TrailingLogs          uint64
	HeartbeatTimeout      time.Duration
	ElectionTimeout       time.Duration
	ReadIndexRounds       uint64 // ReadIndex rounds this node started
	ReadIndexReads        uint64 // linearizable reads they served (many reads share a round)
	ReadsInProgress       int    // the database's read-only connections in use now (queries, dumps, copies)
	LeaderChanges         uint64 // times this node saw the leader change
	Proposals             uint64 // entries this node proposed as leader
	SnapshotsSent         uint64 // database snapshots streamed to followers
	SnapshotBytesSent     uint64
	SnapshotsReceived     uint64
	SnapshotBytesReceived uint64
}

// Applying is a statement being applied, and for how long it has run.
type Applying struct {
	Index      uint64
	SQL        string
	RunningFor time.Duration
}

// LeaderInfo identifies the leader, when known.
type LeaderInfo struct {
	NodeID   string
	RaftAddr string
	HTTPURL  string
}

// Status reports the node's state. It never blocks on the raft loop.
func (s *Store) Status() Status {
	ls := s.rlog.Stats()
	ns := s.node.Stats()
	dbSize, walSize := s.db.Size()
	st := Status{
		NodeID: s.cfg.NodeID, RaftID: s.cluster.RaftID(), ClusterID: s.cluster.ID(), RaftAddr: s.cfg.RaftAddr, HTTPURL: s.cfg.httpURL(),
		Open: s.node.Running(), Term: s.node.Term(), CommitIndex: s.node.Commit(),
		AppliedIndex: s.applied.Index(), DBApplied: s.db.State().AppliedIndex,
		LastLogIndex: ls.LastIndex, FirstLogIndex: ls.FirstIndex, SnapshotIndex: ls.SnapshotIndex,
		SnapshotTerm: ls.SnapshotTerm, LogSegments: ls.Segments, LogBytes: ls.Bytes,
		DBSize: dbSize, WALSize: walSize, Members: s.cluster.Members().List(), Uptime: time.Since(s.started),
		DataDir: s.cfg.DataDir, DBPath: s.cfg.dbPath(), ForeignKeys: s.cfg.ForeignKeys,
		SnapshotThreshold: s.cfg.SnapshotThreshold, SnapshotInterval: s.cfg.SnapshotInterval,
		TrailingLogs: s.cfg.TrailingLogs, HeartbeatTimeout: s.cfg.HeartbeatTimeout, ElectionTimeout: s.cfg.ElectionTimeout,
		ReadIndexRounds: ns.ReadIndexRounds, ReadIndexReads: ns.ReadIndexReads, ReadsInProgress: s.db.ReadsInProgress(),
		LeaderChanges: ns.LeaderChanges, Proposals: ns.Proposals,
	}
	if s.cfg.Extensions != nil {
		st.Extensions = *s.cfg.Extensions
	}
	_, st.AppliedTerm, _ = s.applied.Position()
	st.LastLogTerm, _ = s.rlog.Term(ls.LastIndex)
	st.ReapTimeout, st.ReapReadOnlyTimeout = s.cfg.ReapTimeout, s.cfg.ReapReadOnlyTimeout
	st.SnapshotDir = s.cfg.snapDir()
	if a, ok := s.fsm.Applying(); ok {
		st.Applying = &Applying{Index: a.Index, SQL: a.SQL, RunningFor: time.Since(a.Since)}
	}
	st.ApplyStepLimit, st.SlowApply = cmp.Or(s.cfg.ApplyStepLimit, db.DefaultApplyStepLimit), s.cfg.SlowApply
	st.SnapshotsSent, st.SnapshotBytesSent, st.SnapshotsReceived, st.SnapshotBytesReceived = s.tr.Snapshots()
	st.State = stateName(s.node.State(), st.Open)
	if !s.IsLeader() {
		st.LastContact = s.node.SinceContact()
	}
	for _, m := range st.Members {
		if m.RaftID == s.cluster.RaftID() {
			st.Voter = m.Voter
		}
	}
	if l := s.node.Leader(); l != 0 {
		for _, m := range st.Members {
			if m.RaftID == l {
				st.Leader = LeaderInfo{NodeID: m.NodeID, RaftAddr: m.RaftAddr, HTTPURL: m.HTTPAddr}
			}
		}
	}
	if err := s.Fault(); err != nil {
		st.Fault = err.Error()
	}
	switch {
	case !st.Open:
		st.NotReady = "not running yet"
	case st.Fault != "":
		st.NotReady = st.Fault
	case st.Leader.NodeID == "":
		st.NotReady = "no leader known"
	case s.restorePending():
		st.NotReady = "auto-restore in progress"
	case s.cfg.Voter && !st.Voter && isMember(st.Members, st.RaftID):
		st.NotReady = "a learner still catching up: it becomes a voter once it has"
	case s.cfg.Voter && !st.Voter:
		st.NotReady = "not a member of the cluster"
	}
	st.Ready = st.NotReady == ""
	return st
}

// isMember reports whether the member with Raft ID id is in members (as a voter or a learner).
func isMember(members []Member, id uint64) bool {
	return slices.ContainsFunc(members, func(m Member) bool { return m.RaftID == id })
}

// stateName uses rqlite's (hashicorp raft's) names for the raft states.
func stateName(t raft.StateType, open bool) string {
	if !open {
		return "Shutdown"
	}
	switch t {
	case raft.StateLeader:
		return "Leader"
	case raft.StateCandidate, raft.StatePreCandidate:
		return "Candidate"
	default:
		return "Follower"
	}
}

// Leader returns the leader, if one is known.
func (s *Store) Leader() (LeaderInfo, bool) {
	l := s.node.Leader()
	if l == 0 {
		return LeaderInfo{}, false
	}
	m, ok := s.cluster.Members().Get(l)
	if !ok {
		return LeaderInfo{}, false
	}
	return LeaderInfo{NodeID: m.GetNodeId(), RaftAddr: m.GetRaftAddr(), HTTPURL: m.GetHttpAddr()}, true
}

// Members lists the cluster's members.
func (s *Store) Members() []Member { return s.cluster.Members().List() }

// Snapshot compacts the log now, keeping trailing entries (0: the configured number) behind it.
// It reports ErrNothingNew when nothing was applied since the last one.
func (s *Store) Snapshot(ctx context.Context, trailing uint64) error {
	return s.fsm.Snapshot(ctx, trailing)
}

// ErrNothingNew reports a snapshot request with nothing applied since the last snapshot.
var ErrNothingNew error = errcode.ErrNothingNew

// Fault reports why this node cannot serve now (its disk refuses writes), or nil.
func (s *Store) Fault() error { return s.fsm.Fault() }

// HTTPAddr is this node's advertised HTTP address (host:port).
func (s *Store) HTTPAddr() string { return s.cfg.HTTPAddr }

// RaftAddr is this node's advertised Raft address.
func (s *Store) RaftAddr() string { return s.cfg.RaftAddr }

// WaitApplied returns once this node has applied the log up to index.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	return s.applied.Wait(ctx, index)
}

// DataDir is the node's data directory.
func (s *Store) DataDir() string { return s.cfg.DataDir }

// Remove takes the node with the given node-id out of the cluster (package cluster).
func (s *Store) Remove(ctx context.Context, nodeID string) error {
	return s.cluster.Remove(ctx, nodeID)
}

// Stepdown makes the leader hand leadership over (to the node with nodeID, if given).
func (s *Store) Stepdown(ctx context.Context, nodeID string, wait bool) error {
	return s.cluster.Stepdown(ctx, nodeID, wait)
}
