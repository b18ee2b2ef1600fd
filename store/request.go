package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/fsm"
)

// Response is the outcome of a request: one result per statement, a request-level error, and the index
// of the log entry it went through (0 if it did not).
type Response struct {
	Results   []db.Result
	Error     string
	RaftIndex uint64
}

// Level is a read consistency level.
type Level int32

const (
	LevelWeak Level = iota // rqlite's default: the node must believe it is the leader
	LevelNone
	LevelLinearizable
	LevelStrong
	LevelAuto
)

// ReadOptions qualify a read.
type ReadOptions struct {
	Level           Level
	Freshness       time.Duration // level none: refuse if the leader was last heard from longer ago
	FreshnessStrict bool
	// MinIndex makes any node serve the read once it has applied this log index (read-your-writes with
	// the raft_index a write returned), without a round to the leader.
	MinIndex uint64
}

// ErrStaleRead is returned for a level-none read on a node that has not heard from the leader recently.
var ErrStaleRead error = errcode.ErrStaleRead

// requestIDs numbers this process's proposals. It starts at a random point: a proposal is recognised in the
// log by (Raft ID, request id), and the Raft ID outlives the process.
var requestIDs atomic.Uint64

func init() { requestIDs.Store(rand.Uint64() >> 1) }

// IsLeader reports whether this node believes it leads the cluster.
func (s *Store) IsLeader() bool { return s.node.IsLeader() }

// Execute runs a request through the log (writes, and reads at level strong) and returns its results
// once the entry is applied. Only the leader can; others get ErrNotLeader. env is the deterministic
// environment every replica applies it with (the receiving node's clock, a random seed).
func (s *Store) Execute(ctx context.Context, req *command.Request, env db.Env) (Response, error) {
	if !s.node.Running() {
		return Response{}, ErrNotOpen
	}
	if err := s.Fault(); err != nil {
		return Response{}, err
	}
	if !s.IsLeader() {
		return Response{}, ErrNotLeader
	}
	if s.restorePending() {
		return Response{}, errRestoring
	}
	id := requestIDs.Add(1)
	data, err := proto.Marshal(&command.Command{
		Type: command.Command_TYPE_REQUEST, Proposer: s.cluster.RaftID(), Id: id,
		NowUnixMs: env.NowUnixMs, Seed: env.Seed, StepLimit: s.cfg.ApplyStepLimit, Request: req,
		ExtensionsDigest: s.extensionsDigest(),
	})
	if err != nil {
		return Response{}, fmt.Errorf("encode request: %w", err)
	}
	if len(data) > maxEntrySize {
		return Response{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), maxEntrySize)
	}
	r, err := s.node.Propose(ctx, data, id)
	if err != nil {
		return Response{}, err
	}
	res := r.Value.(fsm.Result)
	return Response{Results: res.Results, Error: res.Err, RaftIndex: r.Index}, nil
}

// Query reads at the requested level. It returns ErrNotLeader when the level needs the leader (weak,
// strong) and this node is not it; the caller forwards. Linearizable reads are served locally by any
// node, followers and learners included, once it has applied the index a ReadIndex round confirmed.
func (s *Store) Query(ctx context.Context, req *command.Request, opts ReadOptions, env db.Env) (Response, error) {
	if !s.node.Running() {
		return Response{}, ErrNotOpen
	}
	if err := s.Fault(); err != nil {
		return Response{}, err
	}
	level := opts.Level
	if level == LevelAuto {
		level = LevelWeak
		if !s.cfg.Voter {
			level = LevelNone
		}
	}
	var raftIndex uint64
	if opts.MinIndex > 0 {
		if err := s.applied.Wait(ctx, opts.MinIndex); err != nil {
			return Response{}, fmt.Errorf("waiting to apply index %d: %w", opts.MinIndex, err)
		}
		level = LevelNone
	}
	switch level {
	case LevelNone:
		if opts.Freshness > 0 && !s.IsLeader() && s.stale(opts.Freshness, opts.FreshnessStrict) {
			return Response{}, ErrStaleRead
		}
	case LevelWeak:
		if !s.IsLeader() {
			return Response{}, ErrNotLeader
		}
	case LevelLinearizable:
		if _, err := s.confirmedApplied(ctx); err != nil {
			return Response{}, err
		}
	case LevelStrong:
		// The leader confirms with a quorum that it still leads (a ReadIndex round, as for linearizable),
		// then waits until it has applied the commit index that round fixed: the read sees every write
		// committed before it began, exactly as if it had taken its own place in the log, without an entry
		// to write, fsync and apply on every node. Raft answers a leader's ReadIndex only once the leader
		// has committed an entry of its own term, so a new leader cannot answer from an old commit index.
		// The confirmed index is the read's raft_index.
		if !s.IsLeader() {
			return Response{}, ErrNotLeader
		}
		idx, err := s.confirmedApplied(ctx)
		if err != nil {
			return Response{}, err
		}
		raftIndex = idx
	}
	res, err := s.db.Query(ctx, req)
	if err != nil {
		return Response{}, err
	}
	return Response{Results: res.Results, Error: res.Error, RaftIndex: raftIndex}, nil
}

// confirmedApplied runs a ReadIndex round (the leader confirms with a quorum that it still leads, and
// fixes the commit index) and waits until this node has applied that index, which it returns.
func (s *Store) confirmedApplied(ctx context.Context) (uint64, error) {
	idx, err := s.node.ReadIndex(ctx)
	if err != nil {
		return 0, err
	}
	if err := s.applied.Wait(ctx, idx); err != nil {
		return 0, fmt.Errorf("index %d: timeout waiting to apply: %w", idx, err)
	}
	return idx, nil
}

// stale reports whether this follower's data may be older than freshness: it has not heard from the
// leader for that long, or (strict) it has entries committed but not applied and was last fully applied
// longer ago than that.
func (s *Store) stale(freshness time.Duration, strict bool) bool {
	if s.node.SinceContact() > freshness {
		return true
	}
	if !strict || s.applied.Index() >= s.node.Commit() {
		return false
	}
	last := s.fsm.CaughtUp()
	return last.IsZero() || time.Since(last) > freshness
}
