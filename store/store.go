package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/cdc"
	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/fsm"
	"github.com/raftlite/raftlite/nodecall"
	"github.com/raftlite/raftlite/raftlog"
	"github.com/raftlite/raftlite/raftnode"
	"github.com/raftlite/raftlite/transport"
)

// Errors callers act on; package errcode gives each a code that survives the trip between nodes.
var (
	ErrNotLeader  error = errcode.ErrNotLeader
	ErrNoLeader   error = errcode.ErrNoLeader
	ErrNotOpen    error = errcode.ErrNotOpen
	ErrStopped    error = errcode.ErrStopped
	ErrLeaderLost error = errcode.ErrLeaderLost
	// ErrOutcomeUnknown: leadership changed after the request was proposed, and it may or may not be
	// applied in the end; unlike ErrLeaderLost, retrying it can apply it twice.
	ErrOutcomeUnknown error = errcode.ErrOutcomeUnknown
	ErrTimeout        error = errcode.ErrTimeout
	ErrTooLarge       error = errcode.ErrTooLarge
	ErrDiskFull       error = raftnode.ErrDiskFull
	errUnknownNode    error = errcode.ErrUnknownNode
)

// maxEntrySize bounds one log entry; larger requests are refused before they are proposed.
const maxEntrySize = 64 << 20

// Store is one node of the replicated database: the raft node (package raftnode), the cluster it belongs
// to (package cluster), and, here, the state machine and the requests the API makes.
type Store struct {
	cfg     Config
	log     *slog.Logger
	db      *db.DB
	rlog    *raftlog.Log
	node    *raftnode.Node
	cluster *cluster.Cluster
	tr      Transport
	calls   *nodecall.Client
	applied *raftnode.AppliedIndex // how far the apply loop has processed entries
	fsm     *fsm.FSM
	cdc     *cdc.Service // nil without Config.CDC
	stopc   chan struct{}
	startMu sync.Mutex // Close waits for a startRaft under way, and startRaft refuses once Close began
	stopped atomic.Bool
	started time.Time
	fatal   chan error // a loop hit an unrecoverable error
	// restorePath is the downloaded -auto-restore backup until it is installed or given up (nil: none).
	restorePath atomic.Pointer[string]
}

// Transport carries the node's traffic: raft messages, snapshots and internal calls. Package transport's,
// over TCP on Config.Listener, is the real one; tests of several nodes in one process give an in-memory
// one (Config.NewTransport).
type Transport interface {
	cluster.Transport // calls, peers and the cluster ID
	Send(msgs []*raftpb.Message)
	Snapshots() (sent, bytesSent, received, bytesReceived uint64)
	Start()
	Close() error
}

// Open opens the node's database and Raft log and starts listening on the Raft port. Start makes it run.
func Open(cfg Config) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	// A directory that already existed may have been created more open: it holds the database.
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict data directory: %w", err)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, stopc: make(chan struct{}), started: time.Now(), fatal: make(chan error, 2)}
	clusterID, err := cluster.LoadClusterID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	// Everything in the snapshot directory is transient; files a crash left behind are whole database copies.
	if err := os.RemoveAll(s.cfg.snapDir()); err != nil {
		return nil, fmt.Errorf("clear snapshot directory: %w", err)
	}
	if err := os.MkdirAll(s.cfg.snapDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot directory: %w", err)
	}
	rlog, raftID, err := cluster.OpenData(cfg.DataDir, s.cfg.dbPath(), s.log)
	if err != nil {
		return nil, err
	}
	s.rlog = rlog
	removeLeftovers(cfg.DataDir)
	if cluster.Fresh(rlog) {
		// With no log, nothing in the database came from this cluster; see SetAsideOrphanedDB.
		if aside, err := cluster.SetAsideOrphanedDB(s.cfg.dbPath()); err != nil {
			rlog.Close()
			return nil, err
		} else if aside != "" {
			s.log.Warn("database found without a Raft log: set aside, starting empty", "moved_to", aside)
		}
	}
	var exts []string
	var digest string
	if cfg.Extensions != nil {
		exts, digest = cfg.Extensions.Paths, cfg.Extensions.Digest
	}
	if s.db, err = db.Open(s.cfg.dbPath(), db.Options{ForeignKeys: cfg.ForeignKeys, MaxResultBytes: cfg.MaxResultBytes, SlowApply: cfg.SlowApply, Extensions: exts, ExtensionsDigest: digest,
		Capture: s.capture(cfg.CDC), Logger: s.log}); err != nil {
		rlog.Close()
		return nil, err
	}
	if cfg.CDC != nil {
		if s.cdc, err = cdc.New(cfg.CDC, cfg.NodeID, cdcQueue{s.db}, (*cdcCluster)(s), cfg.CDCOut, s.log); err != nil {
			s.db.Close()
			rlog.Close()
			return nil, err
		}
	}
	members, err := s.loadState()
	if err == nil && cfg.AutoRestore != nil {
		err = s.prepareRestore(cfg.AutoRestore)
	}
	if err != nil {
		s.db.Close()
		rlog.Close()
		return nil, err
	}
	s.cluster = cluster.New(cluster.Config{
		DataDir: cfg.DataDir, NodeID: cfg.NodeID, RaftAddr: cfg.RaftAddr, HTTPURL: s.cfg.httpURL(), Voter: cfg.Voter,
		Version: cfg.Version, Join: cfg.Join, JoinAttempts: cfg.JoinAttempts, JoinInterval: cfg.JoinInterval, JoinAs: cfg.JoinAs,
		BootstrapExpect: cfg.BootstrapExpect, BootstrapExpectTimeout: cfg.BootstrapExpectTimeout, BootstrapGrace: cfg.BootstrapGrace,
		Discovery: cfg.Discovery, ReapTimeout: cfg.ReapTimeout, ReapReadOnlyTimeout: cfg.ReapReadOnlyTimeout,
		ElectionTimeout: cfg.ElectionTimeout, RecoverForce: cfg.RecoverForce, ResolveHTTP: cfg.ResolveHTTP, Auth: cfg.Auth,
		Logger: s.log,
	}, raftID, rlog, members, clusterID, s.db.State().AppliedIndex)
	tick, heartbeat, election := cfg.ticks()
	s.node = raftnode.New(raftnode.Config{
		ID: raftID, Tick: tick, HeartbeatTicks: heartbeat, ElectionTicks: election, Log: rlog,
		Transport: (*sender)(s), SnapDir: s.cfg.snapDir(), Identify: commandID, ConfChange: s.cluster.ApplyConfChange,
		OnTurn: s.cluster.Promote, OnTick: func(t *raftnode.Turn) { s.fsm.HandOverIfFaulty(t) }, OnLeaderChange: s.cluster.LeaderChanged,
		ObserveFsync: cfg.ObserveFsync, Fail: s.fail, Logger: s.log, RaftLogger: cfg.RaftLogger,
	}, s.applied)
	s.fsm = fsm.New(fsm.Config{
		DataDir: cfg.DataDir, SnapDir: s.cfg.snapDir(), SnapshotThreshold: cfg.SnapshotThreshold,
		SnapshotInterval: cfg.SnapshotInterval, TrailingLogs: cfg.TrailingLogs, SlowApply: cfg.SlowApply,
		Members: func() int { return len(s.cluster.Members().List()) }, Restore: s.cluster.Restore, Name: s.cluster.Name,
		Logger: s.log, Fail: s.fail,
	}, s.db, s.node, rlog)
	if cfg.NewTransport != nil {
		s.tr, err = cfg.NewTransport(raftID, (*handler)(s))
	} else {
		s.tr, err = transport.New(transport.Config{
			ID: raftID, NodeID: cfg.NodeID, Addr: cfg.RaftAddr, Listener: cfg.Listener, Dial: cfg.Dial,
			Handler: (*handler)(s), Logger: s.log,
			// An entry is at most maxEntrySize; a frame claiming much more comes from a broken or hostile peer.
			MaxFrame: maxEntrySize + 32<<20,
		})
	}
	if err != nil {
		s.db.Close()
		rlog.Close()
		return nil, err
	}
	s.calls = &nodecall.Client{Transport: s.tr, Self: cfg.RaftAddr, Meta: s.cluster.Meta, LeaderAddr: s.cluster.LeaderAddr}
	s.cluster.Attach(s.node, s.tr, s.calls, s.startRaft, func() uint64 { return s.db.State().AppliedIndex })
	s.tr.SetClusterID(clusterID)
	for _, m := range members.List() {
		if m.RaftID != raftID {
			s.tr.SetPeer(m.RaftID, m.NodeID, m.RaftAddr)
		}
	}
	s.tr.Start()
	return s, nil
}

// loadState prepares the apply loop's position from the log and the database: entries after the log's
// snapshot are handed out again by raft, and the apply loop skips those the database already holds. It
// returns the membership as the database and the log's snapshot describe it.
func (s *Store) loadState() (*cluster.Membership, error) {
	st := s.db.State()
	members := cluster.NewMembership()
	if len(st.Membership) > 0 {
		if err := members.Load(st.Membership); err != nil {
			return nil, err
		}
	}
	snap, err := s.rlog.Snapshot()
	if err != nil {
		return nil, err
	}
	meta := snap.GetMetadata()
	if st.AppliedIndex < meta.GetIndex() {
		return nil, fmt.Errorf("database %s holds entries up to %d but the Raft log was compacted to %d: the database is older than the log (restored from elsewhere?); wipe the data directory to rejoin from the cluster",
			s.cfg.dbPath(), st.AppliedIndex, meta.GetIndex())
	}
	members.SetConf(raftpb.EnsureConfState(meta.GetConfState()))
	s.applied = raftnode.NewAppliedIndex(meta.GetIndex(), meta.GetTerm(), meta.GetConfState())
	return members, nil
}

// extensionsDigest identifies the SQLite extensions this node loads ("" for none).
func (s *Store) extensionsDigest() string {
	if s.cfg.Extensions == nil {
		return ""
	}
	return s.cfg.Extensions.Digest
}

// RaftID is this node's Raft member ID.
func (s *Store) RaftID() uint64 { return s.cluster.RaftID() }

// NodeID is this node's user-facing id.
func (s *Store) NodeID() string { return s.cfg.NodeID }

// ReadOnly reports whether a request changes nothing, so that it may be served as a read.
func (s *Store) ReadOnly(ctx context.Context, req *command.Request) (bool, error) {
	return s.db.ReadOnly(ctx, req)
}

// CheckSQL compiles sql on a read connection without running it.
func (s *Store) CheckSQL(ctx context.Context, sql string) error { return s.db.Check(ctx, sql) }

// ValidateDatabase checks that data is a SQLite database this node could load.
func (s *Store) ValidateDatabase(data []byte) error { return s.db.Validate(data) }

// Checkpoint moves the WAL's content into the database file.
func (s *Store) Checkpoint() error { return s.db.Checkpoint() }

// Fatal delivers an error after which the node cannot go on (its disk failed in a way raft cannot recover
// from); the process should exit.
func (s *Store) Fatal() <-chan error { return s.fatal }

func (s *Store) fail(err error) {
	s.log.Error("node cannot continue", "err", err)
	select {
	case s.fatal <- err:
	default:
	}
}

// Start makes the node run: it restarts from its log, or, with no log, rejoins or joins a cluster or
// bootstraps a new one (package cluster). It returns once raft runs; the node may not know a leader yet.
// A backup downloaded for -auto-restore is installed once a leader is known (finishRestore).
func (s *Store) Start(ctx context.Context) error {
	if err := s.cluster.Start(ctx); err != nil {
		return err
	}
	if s.restorePending() {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-s.stopc
			cancel()
		}()
		go s.finishRestore(ctx, s.cfg.AutoRestore)
	}
	return nil
}

// Close stops the node. It first leaves the cluster gracefully (cluster.Leave): a leader hands leadership
// over, and with -raft-cluster-remove-shutdown the node removes itself.
func (s *Store) Close(ctx context.Context) error {
	s.startMu.Lock()
	already := s.stopped.Swap(true)
	s.startMu.Unlock()
	if already {
		return nil
	}
	s.cluster.Leave(ctx, s.cfg.RemoveOnShutdown)
	close(s.stopc)
	if s.cdc != nil {
		s.cdc.Stop()
	}
	s.fsm.Stop()
	s.node.Stop()
	errs := []error{s.tr.Close()}
	errs = append(errs, s.db.Close(), s.rlog.Close())
	return errors.Join(errs...)
}
