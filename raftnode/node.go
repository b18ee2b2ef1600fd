package raftnode

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/raftlog"
)

// Errors of proposals and reads. They carry errcode's codes, so that they survive the trip between nodes.
var (
	ErrNotLeader  error = errcode.ErrNotLeader
	ErrNoLeader   error = errcode.ErrNoLeader
	ErrStopped    error = errcode.ErrStopped
	ErrLeaderLost error = errcode.ErrLeaderLost
	// ErrOutcomeUnknown: leadership changed after the request was proposed, and it may or may not be
	// applied in the end; unlike ErrLeaderLost, retrying it can apply it twice.
	ErrOutcomeUnknown error = errcode.ErrOutcomeUnknown
	ErrTimeout        error = errcode.ErrTimeout
	ErrDiskFull       error = errcode.New(errcode.Fault, "disk full: this node cannot write; writes are refused until space is freed")
	// errDiskFullInFlight answers the requests under way when the log's disk filled: they were proposed (and
	// perhaps sent to the others) but may never be applied here, so a retry could apply one twice.
	// It is not ErrDiskFull: that one means "refused".
	errDiskFullInFlight error = errcode.New(errcode.OutcomeUnknown, "disk full: this node could not finish the request; it may or may not be applied")
	// ErrConfDropped: raft did not take a conf change (another was pending); it never applies.
	ErrConfDropped = errors.New("membership change not accepted; another is in progress")
)

// Sender sends raft messages to the other nodes (the transport).
type Sender interface {
	Send(msgs []*raftpb.Message)
}

// Config describes a node.
type Config struct {
	ID             uint64
	Tick           time.Duration // raft's logical clock
	HeartbeatTicks int
	ElectionTicks  int
	Log            *raftlog.Log
	Transport      Sender
	// SnapDir holds received snapshots until raft installs them.
	SnapDir string
	// Identify reads the proposer and request id out of a normal entry's data: a proposal is recognised in
	// the log by them (raft appends copies of what it is given).
	Identify func(data []byte) (proposer, id uint64)
	// ConfChange applies a committed conf change, on the raft loop, to raft (rn.ApplyConfChange) and to the
	// membership, and says what the state machine must record with the entry.
	ConfChange func(rn *raft.RawNode, e *raftpb.Entry) AppliedConf
	// OnTurn, if set, runs on the raft loop at every turn (after proposals, before the Ready); OnTick at
	// every tick.
	OnTurn, OnTick func(t *Turn)
	// OnLeaderChange, if set, is told on the raft loop when this node's view of the leader changes: the
	// new leader (raft.None while an election runs) and the term.
	OnLeaderChange func(leader, term uint64)
	// ObserveFsync, if set, is told how long each durable write of the log took.
	ObserveFsync func(time.Duration)
	// Fail is told of a failure of the log after which the node cannot go on.
	Fail       func(error)
	Logger     *slog.Logger
	RaftLogger *slog.Logger // etcd raft's own messages; Logger if nil
}

// Node is one raft node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	storage *storage
	in      inputs
	applyc  chan Apply // committed entries and snapshot installs, in log order, to the state machine
	stopc   chan struct{}
	loops   sync.WaitGroup
	running atomic.Bool
	state   published
	stats   counters
	applied *AppliedIndex
	waiters *waiters
	snaps   receivedSnapshots
	logFull atomic.Bool // the disk refused a write of the log for lack of space
}

// inputs are what the raft loop takes from everyone else.
type inputs struct {
	propc chan *proposal
	recvc chan []*raftpb.Message
	readc chan *readRequest
	actc  chan func(*raft.RawNode)
}

// published is what the raft loop makes known to everyone else.
type published struct {
	leader      atomic.Uint64 // Raft ID of the leader, 0 when unknown
	raftState   atomic.Int32  // raft.StateType
	term        atomic.Uint64
	commit      atomic.Uint64
	lastIndex   atomic.Uint64
	lastContact atomic.Int64 // when the leader was last heard from (unix nanoseconds)
}

// counters are for /status and the metrics.
type counters struct {
	readRounds    atomic.Uint64 // ReadIndex rounds started
	readsInRounds atomic.Uint64 // linearizable reads those rounds served
	leaderChanges atomic.Uint64
	proposals     atomic.Uint64
}

// New prepares a node on a log already open; applied describes what the state machine holds. Start runs it.
func New(cfg Config, applied *AppliedIndex) *Node {
	n := &Node{
		cfg: cfg, log: cfg.Logger,
		in: inputs{
			propc: make(chan *proposal, 4096),
			recvc: make(chan []*raftpb.Message, 4096),
			readc: make(chan *readRequest, 4096),
			actc:  make(chan func(*raft.RawNode), 256),
		},
		applyc:  make(chan Apply, 1024),
		stopc:   make(chan struct{}),
		applied: applied,
		waiters: newWaiters(),
		snaps:   receivedSnapshots{byIndex: map[uint64]string{}},
	}
	n.storage = &storage{Log: cfg.Log, applied: applied}
	if last, err := cfg.Log.LastIndex(); err == nil {
		n.state.lastIndex.Store(last)
	}
	return n
}

func (n *Node) raftConfig() *raft.Config {
	return &raft.Config{
		ID:                        n.cfg.ID,
		ElectionTick:              n.cfg.ElectionTicks,
		HeartbeatTick:             n.cfg.HeartbeatTicks,
		Storage:                   n.storage,
		Applied:                   n.applied.Index(),
		MaxSizePerMsg:             1 << 20,
		MaxCommittedSizePerReady:  16 << 20,
		MaxUncommittedEntriesSize: 1 << 30,
		MaxInflightMsgs:           256,
		MaxInflightBytes:          64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		StepDownOnRemoval:         true,
		// Followers never forward proposals inside raft: the API forwards whole requests to the leader, so a
		// caller always learns whether its write was applied.
		DisableProposalForwarding: true,
		Logger:                    &raftLogger{log: cmp.Or(n.cfg.RaftLogger, n.log)},
	}
}

// Start creates the RawNode (bootstrapping it with peers, if given) and runs the raft loop. A cluster of
// one need not wait an election timeout to elect itself.
func (n *Node) Start(peers []raft.Peer) error {
	rn, err := raft.NewRawNode(n.raftConfig())
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	if len(peers) > 0 {
		if err := rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	n.running.Store(true)
	n.loops.Add(1)
	go n.run(rn, len(peers) == 1)
	return nil
}

// Stop ends the raft loop and fails every caller still waiting. It returns once the loop has ended.
func (n *Node) Stop() {
	select {
	case <-n.stopc:
	default:
		close(n.stopc)
	}
	n.loops.Wait()
	n.waiters.failAll(ErrStopped)
}

// Stopping is closed when the node stops.
func (n *Node) Stopping() <-chan struct{} { return n.stopc }

// Running reports whether the raft loop has started.
func (n *Node) Running() bool { return n.running.Load() }

// Committed delivers, in log order, the committed entries and the snapshots to install.
func (n *Node) Committed() <-chan Apply { return n.applyc }

// Applied is what the state machine has applied.
func (n *Node) Applied() *AppliedIndex { return n.applied }

// ID is this node's Raft ID.
func (n *Node) ID() uint64 { return n.cfg.ID }

// Leader is the Raft ID of the leader, 0 when none is known.
func (n *Node) Leader() uint64 { return n.state.leader.Load() }

// IsLeader reports whether this node believes it leads.
func (n *Node) IsLeader() bool { return n.State() == raft.StateLeader }

// State is raft's state of this node.
func (n *Node) State() raft.StateType { return raft.StateType(n.state.raftState.Load()) }

// Term, Commit and LastIndex are raft's, as of the last Ready.
func (n *Node) Term() uint64      { return n.state.term.Load() }
func (n *Node) Commit() uint64    { return n.state.commit.Load() }
func (n *Node) LastIndex() uint64 { return n.state.lastIndex.Load() }

// SinceContact is how long ago the leader was last heard from.
func (n *Node) SinceContact() time.Duration {
	last := n.state.lastContact.Load()
	if last == 0 {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(time.Unix(0, last))
}

// LogFull reports whether the disk refused a write of the log for lack of space (and has not since).
func (n *Node) LogFull() bool { return n.logFull.Load() }

// Stats are the node's counters.
type Stats struct {
	ReadIndexRounds, ReadIndexReads, LeaderChanges, Proposals uint64
}

func (n *Node) Stats() Stats {
	return Stats{ReadIndexRounds: n.stats.readRounds.Load(), ReadIndexReads: n.stats.readsInRounds.Load(),
		LeaderChanges: n.stats.leaderChanges.Load(), Proposals: n.stats.proposals.Load()}
}

// Step hands messages received from the transport to raft (those addressed to another Raft ID are
// dropped), and notes when the leader was last heard from.
func (n *Node) Step(msgs []*raftpb.Message) {
	if !n.running.Load() {
		return // not started yet (still joining): raft will resend
	}
	if leader := n.state.leader.Load(); leader != 0 {
		for _, m := range msgs {
			if m.GetFrom() == leader {
				n.state.lastContact.Store(time.Now().UnixNano())
				break
			}
		}
	}
	select {
	case n.in.recvc <- msgs:
	case <-n.stopc:
	}
}

// ReportUnreachable tells raft a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) {
	select {
	case n.in.actc <- func(rn *raft.RawNode) { rn.ReportUnreachable(id) }:
	default: // a later report will do
	}
}

// ReportSnapshot tells raft how sending a snapshot to a peer went. It must not be dropped: without it the
// follower stays paused waiting for a snapshot.
func (n *Node) ReportSnapshot(id uint64, ok bool) {
	status := raft.SnapshotFinish
	if !ok {
		status = raft.SnapshotFailure
	}
	select {
	case n.in.actc <- func(rn *raft.RawNode) { rn.ReportSnapshot(id, status) }:
	case <-n.stopc:
	}
}

// OnRaft runs f on the raft loop and waits for it, or for ctx to end (f may then still run later). It
// reports whether f ran.
func (n *Node) OnRaft(ctx context.Context, f func(rn *raft.RawNode)) bool {
	if !n.running.Load() {
		return false
	}
	done := make(chan struct{})
	select {
	case n.in.actc <- func(rn *raft.RawNode) { f(rn); close(done) }:
	case <-n.stopc:
		return false
	case <-ctx.Done():
		return false
	}
	select {
	case <-done:
		return true
	case <-n.stopc:
		return false
	case <-ctx.Done():
		return false
	}
}
