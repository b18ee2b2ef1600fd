package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
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

// Store is one node of the replicated database.
type Store struct {
	cfg    Config
	log    *slog.Logger
	raftID uint64

	db      *db.DB
	rlog    *raftlog.Log
	node    *raftnode.Node
	tr      *transport.Transport
	members *membership

	stopc   chan struct{}
	stopped atomic.Bool
	loops   sync.WaitGroup

	// applied is the index up to which the apply loop has processed entries.
	applied *raftnode.AppliedIndex

	// contact reports an existing cluster that contacted this (wiped, fresh) node: the address to rejoin through.
	contact chan string

	confMu sync.Mutex // serialises this node's membership changes: raft accepts one at a time
	// notified collects the nodes that announced themselves for -bootstrap-expect, by node-id.
	notifiedMu sync.Mutex
	notified   map[string]*command.Member
	snapc      chan snapshotRequest
	bootc      chan bootRequest
	// caughtUp is when this node last had applied everything it knew committed (unix nanoseconds).
	caughtUp atomic.Int64
	// applyFault: committed entries cannot be applied to the database (fault.go).
	applyFault atomic.Pointer[applyFault]
	// Raft-loop state of the hooks: promotions (promote.go) and handing over for a fault (fault.go).
	promo         promotion
	faultHandOver *applyFault

	// openedAt is the index the database had applied when the node opened: entries up to it that raft
	// hands out again are not news.
	openedAt uint64

	// bootPending: a booted database is in place but the log was not compacted past it (see bootMarker).
	bootPending bool

	clusterID atomic.Uint64 // see clusterid.go; 0 until the node bootstraps or joins
	// recovery is what this node serves the others while it recovers with peers.json (peersjson.go).
	recovery      recovery
	foreignWarned atomic.Int64 // unix nanos of the last warnForeignCluster

	started time.Time
	fatal   chan error // a loop hit an unrecoverable error
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
	s := &Store{
		cfg:      cfg,
		log:      cfg.Logger,
		members:  newMembership(),
		stopc:    make(chan struct{}),
		contact:  make(chan string, 1),
		notified: map[string]*command.Member{},
		snapc:    make(chan snapshotRequest),
		bootc:    make(chan bootRequest),
		started:  time.Now(),
		fatal:    make(chan error, 2),
	}
	var err error
	if s.raftID, err = loadOrCreateRaftID(cfg.DataDir); err != nil {
		return nil, err
	}
	clusterID, err := loadClusterID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.clusterID.Store(clusterID)
	// Everything in the snapshot directory is transient; files a crash left behind are whole database copies.
	if err := os.RemoveAll(s.snapDir()); err != nil {
		return nil, fmt.Errorf("clear snapshot directory: %w", err)
	}
	if err := os.MkdirAll(s.snapDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot directory: %w", err)
	}
	if err := s.openLog(); err != nil {
		return nil, err
	}
	if s.fresh() {
		// With no log, nothing in the database came from this cluster; see setAsideOrphanedDB.
		if aside, err := setAsideOrphanedDB(s.dbPath()); err != nil {
			s.rlog.Close()
			return nil, err
		} else if aside != "" {
			s.log.Warn("database found without a Raft log: set aside, starting empty", "moved_to", aside)
		}
	}
	if s.db, err = db.Open(s.dbPath(), db.Options{ForeignKeys: cfg.ForeignKeys, MaxResultBytes: cfg.MaxResultBytes, Logger: s.log}); err != nil {
		s.rlog.Close()
		return nil, err
	}
	if err := s.loadState(); err != nil {
		s.db.Close()
		s.rlog.Close()
		return nil, err
	}
	if _, err := os.Stat(s.bootMarker()); err == nil {
		s.bootPending = true
	}
	tick, heartbeat, election := cfg.ticks()
	s.node = raftnode.New(raftnode.Config{
		ID: s.raftID, Tick: tick, HeartbeatTicks: heartbeat, ElectionTicks: election, Log: s.rlog,
		Transport: (*sender)(s), SnapDir: s.snapDir(), Identify: commandID, ConfChange: s.applyConfChange,
		OnTurn: s.maybePromote, OnTick: s.handOverIfFaulty, ObserveFsync: cfg.ObserveFsync, Fail: s.fail,
		Logger: s.log, RaftLogger: cfg.RaftLogger,
	}, s.applied)
	s.tr, err = transport.New(transport.Config{
		ID: s.raftID, NodeID: cfg.NodeID, Addr: cfg.RaftAddr, Listener: cfg.Listener, Dial: cfg.Dial,
		Handler: (*handler)(s), Logger: s.log,
		// An entry is at most maxEntrySize; a frame claiming much more comes from a broken or hostile peer.
		MaxFrame: maxEntrySize + 32<<20,
	})
	if err != nil {
		s.db.Close()
		s.rlog.Close()
		return nil, err
	}
	s.tr.SetClusterID(clusterID)
	for _, m := range s.members.list() {
		if m.RaftID != s.raftID {
			s.tr.SetPeer(m.RaftID, m.NodeID, m.RaftAddr)
		}
	}
	s.tr.Start()
	return s, nil
}

func (s *Store) dbPath() string  { return filepath.Join(s.cfg.DataDir, "db.sqlite") }
func (s *Store) snapDir() string { return filepath.Join(s.cfg.DataDir, "snapshots") }

// fresh reports whether the Raft log is empty: the node has never been part of a cluster.
func (s *Store) fresh() bool {
	hs, _, _ := s.rlog.InitialState()
	last, _ := s.rlog.LastIndex()
	snap, _ := s.rlog.Snapshot()
	return raft.IsEmptyHardState(hs) && last == 0 && snap.GetMetadata().GetIndex() == 0
}

// loadState prepares the apply loop's position from the log and the database: entries after the log's
// snapshot are handed out again by raft, and the apply loop skips those the database already holds.
func (s *Store) loadState() error {
	st := s.db.State()
	s.openedAt = st.AppliedIndex
	if len(st.Membership) > 0 {
		if err := s.members.load(st.Membership); err != nil {
			return err
		}
	}
	snap, err := s.rlog.Snapshot()
	if err != nil {
		return err
	}
	meta := snap.GetMetadata()
	if st.AppliedIndex < meta.GetIndex() {
		return fmt.Errorf("database %s holds entries up to %d but the Raft log was compacted to %d: the database is older than the log (restored from elsewhere?); wipe the data directory to rejoin from the cluster",
			s.dbPath(), st.AppliedIndex, meta.GetIndex())
	}
	s.members.setConf(raftpb.EnsureConfState(meta.GetConfState()))
	s.applied = raftnode.NewAppliedIndex(meta.GetIndex(), meta.GetTerm(), meta.GetConfState())
	return nil
}

// RaftID is this node's Raft member ID.
func (s *Store) RaftID() uint64 { return s.raftID }

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
// bootstraps a new one. It returns once raft runs; the node may not know a leader yet.
func (s *Store) Start(ctx context.Context) error {
	if !s.fresh() {
		if err := s.recoverFromPeersFile(ctx); err != nil {
			return err
		}
		if len(s.cfg.Join) > 0 && s.onlyMember() {
			// A cluster that shrank to this node keeps its old -join; only a target in another cluster means
			// the operator wants this node elsewhere, which its data forbids.
			if target := s.joinTargetElsewhere(ctx); target != "" {
				return fmt.Errorf("node is the only node in a single-node cluster, joining other clusters not supported (%s belongs to another cluster: start this node without -join to run its own cluster, or delete its data directory to join that one)", target)
			}
		}
		if err := s.startRaft(nil); err != nil {
			return err
		}
		// Already a member: its entry changes only if its addresses or suffrage did (refresh.go).
		go s.refreshMembership()
		return nil
	}
	if _, err := os.Stat(s.peersPath()); err == nil {
		return fmt.Errorf("%s: this node holds no data, and peers.json recovery is for the nodes that survived with the cluster's data; remove the file and start this node with -join to add it", s.peersPath())
	}
	switch {
	case s.cfg.BootstrapExpect > 0 && len(s.cfg.Join) > 0:
		return s.bootstrapExpect(ctx)
	case len(s.cfg.Join) > 0:
		if err := s.joinCluster(ctx, s.cfg.JoinAttempts); err != nil {
			return err
		}
		return s.startRaft(nil)
	case !s.cfg.Voter:
		return errors.New("cannot create a new non-voting node without joining it to an existing cluster")
	default:
		return s.bootstrapOrRejoin(ctx)
	}
}

// joinTargetElsewhere returns a -join target that answers as a member of another cluster, if any.
func (s *Store) joinTargetElsewhere(ctx context.Context) string {
	for _, target := range s.cfg.Join {
		addr, err := s.resolveRaftAddr(ctx, target)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		meta, err := s.NodeMeta(cctx, addr)
		cancel()
		if err == nil && meta.GetClusterId() != 0 && meta.GetClusterId() != s.clusterID.Load() {
			return target
		}
	}
	return ""
}

// onlyMember reports whether this node is the whole of its cluster.
func (s *Store) onlyMember() bool {
	list := s.members.list()
	return len(list) == 1 && list[0].RaftID == s.raftID
}

// Close stops the node. A leader first hands leadership to the most up-to-date voter, so that the cluster
// does not wait an election timeout for a new one.
func (s *Store) Close(ctx context.Context) error {
	if s.stopped.Swap(true) {
		return nil
	}
	if s.node.Running() {
		if s.cfg.RemoveOnShutdown {
			if err := s.Remove(ctx, s.cfg.NodeID); err != nil {
				s.log.Warn("could not remove this node from the cluster on shutdown", "err", err)
			}
		} else {
			s.warnIfShutdownStrands(ctx)
			if s.IsLeader() {
				if err := s.TransferLeadership(ctx, 0); err != nil && !errors.Is(err, errNoTransferee) {
					s.log.Warn("could not hand leadership over before shutting down", "err", err)
				}
			}
		}
	}
	close(s.stopc)
	s.node.Stop()
	s.loops.Wait()
	errs := []error{s.tr.Close()}
	errs = append(errs, s.db.Close(), s.rlog.Close())
	return errors.Join(errs...)
}
