// Package cluster owns who is in the cluster and how that changes: the membership (the members' records
// and raft's configuration), joining (as a learner first, promoted once caught up), bootstrapping, removal,
// leadership transfer, the node's and the cluster's identity, a node that comes back without its data or
// with damaged data, quorum recovery with peers.json, and the internal calls these need. It drives the
// raft node (package raftnode) and knows nothing of SQL or HTTP.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/nodecall"
	"github.com/raftlite/raftlite/raftlog"
	"github.com/raftlite/raftlite/raftnode"
	"github.com/raftlite/raftlite/transport"
)

// Config describes this node to the cluster.
type Config struct {
	DataDir  string
	NodeID   string
	RaftAddr string // advertised
	HTTPURL  string // advertised, with its scheme ("" if none)
	Voter    bool   // false: a non-voting read replica
	Version  string

	Join                   []string // addresses to join through: HTTP (http://host:port, host:port) or Raft
	JoinAttempts           int
	JoinInterval           time.Duration
	JoinAs                 *command.Credentials
	BootstrapExpect        int
	BootstrapExpectTimeout time.Duration
	// Discovery, if set, finds the cluster of a node that starts without data instead of Join.
	Discovery *Discovery
	// ReapTimeout and ReapReadOnlyTimeout (0: never) are how long the leader waits before it removes a
	// voter, or a non-voter, it has not heard from (reap.go).
	ReapTimeout, ReapReadOnlyTimeout time.Duration
	// BootstrapGrace is how long a node with no data and nothing to join waits for an existing cluster to
	// contact it (a wiped member coming back) before it bootstraps a new cluster.
	BootstrapGrace  time.Duration
	ElectionTimeout time.Duration
	RecoverForce    bool // peers.json recovery even while a quorum is reachable
	// ResolveHTTP asks the node whose HTTP API is at base (http://host:port) for its Raft address.
	ResolveHTTP func(ctx context.Context, base string) (string, error)
	Auth        nodecall.Authorizer
	Logger      *slog.Logger
}

// Transport is what the cluster needs of the transport besides calls: where its peers are, and which
// cluster this node belongs to.
type Transport interface {
	nodecall.Transport
	SetPeer(id uint64, nodeID, addr string)
	RemovePeer(id uint64)
	SetClusterID(id uint64)
	Stats() map[uint64]transport.PeerStats
}

// Cluster is this node's part in the cluster.
type Cluster struct {
	cfg     Config
	log     *slog.Logger
	raftID  uint64
	members *Membership
	node    *raftnode.Node
	tr      Transport
	calls   *nodecall.Client
	rlog    *raftlog.Log
	// startRaft starts the raft node (bootstrapping it with peers, if given) and the state machine.
	startRaft func(peers []raft.Peer) error
	// dbApplied is the index the database holds; replayedUpTo the one it held when the node opened: conf
	// changes up to it that raft hands out again are not news.
	dbApplied    func() uint64
	replayedUpTo uint64
	leaderLog    leaderLog // events.go

	clusterID     atomic.Uint64 // see clusterid.go; 0 until the node bootstraps or joins
	counts        counts
	foreignWarned atomic.Int64 // unix nanos of the last warnForeignCluster
	confMu        sync.Mutex   // serialises this node's membership changes: raft takes one at a time
	join          *joiner
	promo         promotion
	recovery      *recoverer
	stopc         chan struct{}
	// background holds the work the cluster does on its own (refreshing this node's entry, a step-down
	// nobody waits for); Stop waits for it. bgMu orders starting such work against Stop.
	background sync.WaitGroup
	bgMu       sync.Mutex
}

// New prepares this node's part in the cluster: raftID and the log are this data directory's, members the
// membership as the database and the log's snapshot describe it. Attach completes it.
func New(cfg Config, raftID uint64, rlog *raftlog.Log, members *Membership, clusterID, replayedUpTo uint64) *Cluster {
	cl := &Cluster{cfg: cfg, log: cfg.Logger, raftID: raftID, rlog: rlog, members: members, replayedUpTo: replayedUpTo,
		stopc: make(chan struct{})}
	cl.join = &joiner{cl: cl, contact: make(chan string, 1), notified: map[string]*command.Member{}}
	if cl.cfg.ResolveHTTP == nil {
		cl.cfg.ResolveHTTP = func(_ context.Context, base string) (string, error) {
			return "", fmt.Errorf("%s: this node cannot resolve HTTP addresses; give a Raft address", base)
		}
	}
	cl.clusterID.Store(clusterID)
	cl.recovery = &recoverer{cl: cl}
	return cl
}

// Attach gives the cluster the raft node, the transport (and the client calling other nodes through it),
// how to start raft and the state machine, and how far the database has applied.
func (cl *Cluster) Attach(node *raftnode.Node, tr Transport, calls *nodecall.Client, startRaft func([]raft.Peer) error, dbApplied func() uint64) {
	cl.node, cl.tr, cl.calls, cl.startRaft, cl.dbApplied = node, tr, calls, startRaft, dbApplied
}

// Stop ends the cluster's own work (joining, refreshing this node's entry, recovery waits) and waits
// for it.
func (cl *Cluster) Stop() {
	cl.bgMu.Lock()
	select {
	case <-cl.stopc:
	default:
		close(cl.stopc)
	}
	cl.bgMu.Unlock()
	cl.background.Wait()
}

// goBackground runs f on a goroutine of the cluster's own, unless the cluster has stopped.
func (cl *Cluster) goBackground(f func()) {
	cl.bgMu.Lock()
	defer cl.bgMu.Unlock()
	select {
	case <-cl.stopc:
	default:
		cl.background.Go(f)
	}
}

// stopContext is a context that ends when the cluster stops; cancel releases it.
func (cl *Cluster) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-cl.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Members is the membership.
func (cl *Cluster) Members() *Membership { return cl.members }

// RaftID is this node's Raft ID.
func (cl *Cluster) RaftID() uint64 { return cl.raftID }

// ID is the cluster's ID, 0 until the node bootstraps or joins a cluster.
func (cl *Cluster) ID() uint64 { return cl.clusterID.Load() }

// sleep waits d; it returns false if the cluster stops meanwhile.
func (cl *Cluster) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-cl.stopc:
		return false
	case <-t.C:
		return true
	}
}

// Restore puts into effect the membership a snapshot's database records (encoded, as the database keeps
// it) with the snapshot's configuration, and points the transport at exactly those members.
func (cl *Cluster) Restore(encoded []byte, cs *raftpb.ConfState) error {
	if err := cl.members.Load(encoded); err != nil {
		return err
	}
	cl.members.SetConf(cs)
	current := map[uint64]bool{}
	for _, m := range cl.members.List() {
		current[m.RaftID] = true
		if m.RaftID != cl.raftID {
			cl.tr.SetPeer(m.RaftID, m.NodeID, m.RaftAddr)
		}
	}
	for id := range cl.tr.Stats() {
		if !current[id] {
			cl.tr.RemovePeer(id)
		}
	}
	cl.reportLeader()
	return nil
}

// counts are the cluster's share of rqlite's /debug/vars counters.
type counts struct {
	joinRequests       atomic.Uint64 // join requests this node served (cluster.num_join_req)
	ignoredJoins       atomic.Uint64 // joins that changed nothing: the entry matched (store.num_ignored_joins)
	removedBeforeJoins atomic.Uint64 // old identities removed to admit a node under a new one (store.num_removed_before_joins)
	reaped             atomic.Uint64 // members removed by reaping (raftlite's store.num_reaped)
}

// Counts are the cluster's counters: join requests served, joins that changed nothing, old identities
// removed before a join, members reaped.
func (cl *Cluster) Counts() (joinRequests, ignoredJoins, removedBeforeJoins, reaped uint64) {
	return cl.counts.joinRequests.Load(), cl.counts.ignoredJoins.Load(), cl.counts.removedBeforeJoins.Load(), cl.counts.reaped.Load()
}

// Name is the node-id of the member with Raft ID id (its hex Raft ID if unknown).
func (cl *Cluster) Name(id uint64) string { return cl.members.NodeIDs([]uint64{id})[0] }

// Start makes this node a member (joiner.go). It returns once raft runs; the node may not know a leader
// yet. Stop ends it: Start then returns.
func (cl *Cluster) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-cl.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := cl.join.start(ctx)
	select {
	case <-cl.stopc:
		return errcode.ErrStopped
	default:
	}
	if err == nil {
		cl.goBackground(cl.reap)
		cl.goBackground(cl.join.watchForgotten)
	}
	return err
}

// JoinThrough asks the node at target (an HTTP or a Raft address) to add this node to its cluster, or to
// update its entry.
func (cl *Cluster) JoinThrough(ctx context.Context, target string) error {
	return cl.join.joinThrough(ctx, target)
}
