// Package fsm is the state machine: it applies the committed entries the raft node hands it to the
// SQLite database, in log order and in batches (one transaction for many entries), reports each
// proposal's result back to the node, installs the snapshots the leader sends and copies the database for
// followers, boots a database into a one-node cluster, and compacts the log once the database holds what
// it forgets. A failing disk is waited out and reported (fault.go). It knows nothing of HTTP.
package fsm

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/raftlog"
	"github.com/raftlite/raftlite/raftnode"
)

// Config describes the state machine.
type Config struct {
	DataDir           string
	SnapDir           string        // transient copies: received, sent and loaded databases
	SnapshotThreshold uint64        // entries between compactions
	SnapshotInterval  time.Duration // how often to check
	TrailingLogs      uint64        // entries kept behind a compaction for slow followers
	// Members counts the cluster's members (a boot needs exactly one).
	Members func() int
	// Restore puts into effect the membership an installed snapshot's database records.
	Restore func(membership []byte, cs *raftpb.ConfState) error
	// SlowApply: a statement of a committed entry still running after this long is logged (0: never).
	SlowApply time.Duration
	// Name names a member by Raft ID, for the log.
	Name   func(id uint64) string
	Logger *slog.Logger
	// Fail is told of a failure after which the node cannot go on.
	Fail func(error)
}

// Result is what a request produced when applied: one result per statement, and a request-level error.
type Result struct {
	Results []db.Result
	Err     string
}

// FSM applies the log to the database.
type FSM struct {
	cfg     Config
	log     *slog.Logger
	db      *db.DB
	node    *raftnode.Node
	rlog    *raftlog.Log
	applied *raftnode.AppliedIndex
	snapc   chan snapshotRequest
	bootc   chan bootRequest
	// caughtUp is when this node last had applied everything it knew committed (unix nanoseconds).
	caughtUp atomic.Int64
	// snapshots counts the snapshots this node took (log compactions), restores the snapshots it
	// installed from a leader: rqlite's store.num_snapshots and store.num_restores.
	snapshots, restores atomic.Uint64
	// fault: committed entries cannot be applied (fault.go); handedOver is the fault the raft loop last
	// handed leadership over for.
	fault      atomic.Pointer[applyFault]
	handedOver *applyFault
	// bootPending: a booted database is in place but the log was not compacted past it (see bootMarker).
	bootPending bool
	stopc       chan struct{}
	loops       sync.WaitGroup
}

// New prepares the state machine of database d, fed by node, whose log is rlog.
func New(cfg Config, d *db.DB, node *raftnode.Node, rlog *raftlog.Log) *FSM {
	s := &FSM{cfg: cfg, log: cfg.Logger, db: d, node: node, rlog: rlog, applied: node.Applied(),
		snapc: make(chan snapshotRequest), bootc: make(chan bootRequest), stopc: make(chan struct{})}
	s.bootPending = bootPending(cfg.DataDir)
	return s
}

// Start runs the apply loop.
func (s *FSM) Start() {
	s.loops.Add(1)
	go s.runApply()
	if s.cfg.SlowApply > 0 {
		s.loops.Add(1)
		go s.watchApplies()
	}
}

// Applying reports the statement the database is applying for a committed entry now, if any.
func (s *FSM) Applying() (db.Applying, bool) { return s.db.Applying() }

// Stop ends the apply loop and waits for it.
func (s *FSM) Stop() {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	s.loops.Wait()
}

// Counts returns how many snapshots this node took and how many it installed from a leader.
func (s *FSM) Counts() (snapshots, restores uint64) { return s.snapshots.Load(), s.restores.Load() }

// CaughtUp is when this node last had applied everything it knew committed (zero if never).
func (s *FSM) CaughtUp() time.Time {
	if last := s.caughtUp.Load(); last != 0 {
		return time.Unix(0, last)
	}
	return time.Time{}
}

// Snapshot compacts the log now, keeping trailing entries behind it. It reports errcode.ErrNothingNew
// when nothing was applied since the last one.
func (s *FSM) Snapshot(ctx context.Context, trailing uint64) error {
	if trailing == 0 {
		trailing = s.cfg.TrailingLogs
	}
	r := snapshotRequest{trailing: trailing, done: make(chan error, 1)}
	select {
	case s.snapc <- r:
	case <-s.stopc:
		return errcode.ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-s.stopc:
		return errcode.ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}
