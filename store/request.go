package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
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
func (s *Store) IsLeader() bool { return raft.StateType(s.raftState.Load()) == raft.StateLeader }

// Execute runs a request through the log (writes, and reads at level strong) and returns its results
// once the entry is applied. Only the leader can; others get ErrNotLeader. env is the deterministic
// environment every replica applies it with (the receiving node's clock, a random seed).
func (s *Store) Execute(ctx context.Context, req *command.Request, env db.Env) (Response, error) {
	if !s.running.Load() {
		return Response{}, ErrNotOpen
	}
	if err := s.Fault(); err != nil {
		return Response{}, err
	}
	if !s.IsLeader() {
		return Response{}, ErrNotLeader
	}
	id := requestIDs.Add(1)
	data, err := proto.Marshal(&command.Command{
		Type: command.Command_TYPE_REQUEST, Proposer: s.raftID, Id: id,
		NowUnixMs: env.NowUnixMs, Seed: env.Seed, Request: req,
	})
	if err != nil {
		return Response{}, fmt.Errorf("encode request: %w", err)
	}
	if len(data) > maxEntrySize {
		return Response{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), maxEntrySize)
	}
	r, err := s.proposeAndWait(ctx, &proposal{data: data, id: id, done: make(chan proposalResult, 1)})
	if err != nil {
		return Response{}, err
	}
	return Response{Results: r.res.results, Error: r.res.err, RaftIndex: r.index}, nil
}

// proposeAndWait hands p to the raft loop and waits until its entry is applied or lost.
func (s *Store) proposeAndWait(ctx context.Context, p *proposal) (proposalResult, error) {
	select {
	case s.propc <- p:
	case <-ctx.Done():
		return proposalResult{}, ctx.Err()
	case <-s.stopc:
		return proposalResult{}, ErrStopped
	}
	select {
	case r := <-p.done:
		return r, r.err
	case <-ctx.Done():
		// The entry may still be committed and applied later; the caller cannot know.
		return proposalResult{}, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	case <-s.stopc:
		return proposalResult{}, ErrStopped
	}
}

// Query reads at the requested level. It returns ErrNotLeader when the level needs the leader (weak,
// strong) and this node is not it; the caller forwards. Linearizable reads are served locally by any
// node, followers and learners included, once it has applied the index a ReadIndex round confirmed.
func (s *Store) Query(ctx context.Context, req *command.Request, opts ReadOptions, env db.Env) (Response, error) {
	if !s.running.Load() {
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
		if err := s.applied.wait(ctx, opts.MinIndex); err != nil {
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
		idx, err := s.readIndex(ctx)
		if err != nil {
			return Response{}, err
		}
		if err := s.applied.wait(ctx, idx); err != nil {
			return Response{}, fmt.Errorf("index %d: timeout waiting to apply: %w", idx, err)
		}
	case LevelStrong:
		// The read takes its place in the log like a write, and runs here, on a read connection and under
		// the caller's context, once its entry is applied: it sees every write committed before it. (Execute
		// returns once the database has committed the batch holding the entry.)
		mark, err := s.Execute(ctx, &command.Request{Mode: command.Mode_MODE_QUERY}, env)
		if errors.Is(err, ErrOutcomeUnknown) {
			err = ErrLeaderLost // a read changes nothing: unlike a write, it is safe to retry
		}
		if err != nil {
			return Response{}, err
		}
		raftIndex = mark.RaftIndex
	}
	res, err := s.db.Query(ctx, req)
	if err != nil {
		return Response{}, err
	}
	return Response{Results: res.Results, Error: res.Error, RaftIndex: raftIndex}, nil
}

// stale reports whether this follower's data may be older than freshness: it has not heard from the
// leader for that long, or (strict) it has entries committed but not applied and was last fully applied
// longer ago than that.
func (s *Store) stale(freshness time.Duration, strict bool) bool {
	if s.sinceContact() > freshness {
		return true
	}
	if !strict || s.applied.index() >= s.commit.Load() {
		return false
	}
	last := s.caughtUp.Load()
	return last == 0 || time.Since(time.Unix(0, last)) > freshness
}

func (s *Store) sinceContact() time.Duration {
	last := s.lastContact.Load()
	if last == 0 {
		return time.Duration(1<<63 - 1)
	}
	return time.Since(time.Unix(0, last))
}

// noteContact records that the leader was heard from (for freshness bounds).
func (s *Store) noteContact(msgs []*raftpb.Message) {
	leader := s.leader.Load()
	for _, m := range msgs {
		if m.GetFrom() == leader && leader != 0 {
			s.lastContact.Store(time.Now().UnixNano())
			return
		}
	}
}

// readIndex returns a commit index that covers every write acknowledged before the call. Rounds raft
// drops (no leader, leader change) are retried with a new request context until ctx ends.
func (s *Store) readIndex(ctx context.Context) (uint64, error) {
	for {
		r := &readRequest{done: make(chan readResult, 1)}
		select {
		case s.readc <- r:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.stopc:
			return 0, ErrStopped
		}
		var res readResult
		select {
		case res = <-r.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.stopc:
			return 0, ErrStopped
		}
		if res.err == nil {
			return res.index, nil
		}
		if !errors.Is(res.err, errReadRetry) && !errors.Is(res.err, ErrNoLeader) {
			return 0, res.err
		}
		select {
		case <-ctx.Done():
			if errors.Is(res.err, ErrNoLeader) {
				return 0, ErrNoLeader // as rqlite says when it has no leader to ask (503)
			}
			return 0, fmt.Errorf("linearizable read: %w (%v)", ctx.Err(), res.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var errReadRetry = errors.New("read index round lost")

type readRequest struct{ done chan readResult }

type readResult struct {
	index uint64
	err   error
}

// readBatches groups reads into ReadIndex rounds (raft loop only).
type readBatches struct {
	round    uint64
	pending  []*readRequest
	inflight map[uint64]*readRound
}

type readRound struct {
	reqs    []*readRequest
	started time.Time
}

// readRoundTimeout bounds a round raft silently dropped.
const readRoundTimeout = 2 * time.Second

func newReadBatches() readBatches { return readBatches{inflight: map[uint64]*readRound{}} }

func (b *readBatches) add(r *readRequest) { b.pending = append(b.pending, r) }

// readRoundPatience is how long a round may stay unanswered before another starts beside it: raft may
// drop a request without a word, and reads must not wait the whole readRoundTimeout behind it.
const readRoundPatience = 50 * time.Millisecond

// mayStart reports whether a new round may start now: none is in flight, or the ones that are have been
// waiting longer than readRoundPatience.
func (b *readBatches) mayStart(now time.Time) bool {
	young := 0
	for _, r := range b.inflight {
		if now.Sub(r.started) < readRoundPatience {
			young++
		}
	}
	return young == 0
}

// retryInflight sends the reads of every round in flight back to their callers to be tried again.
func (b *readBatches) retryInflight() {
	for n, round := range b.inflight {
		delete(b.inflight, n)
		for _, r := range round.reqs {
			r.done <- readResult{err: errReadRetry}
		}
	}
}
func (b *readBatches) hasPending() bool { return len(b.pending) > 0 }

func (b *readBatches) startRound() ([]byte, int) {
	n := len(b.pending)
	b.round++
	b.inflight[b.round] = &readRound{reqs: b.pending, started: time.Now()}
	b.pending = nil
	return readCtx(b.round), n
}

func (b *readBatches) resolve(rs raft.ReadState) {
	if len(rs.RequestCtx) != 8 {
		return
	}
	n := uint64(0)
	for _, c := range rs.RequestCtx {
		n = n<<8 | uint64(c)
	}
	round, ok := b.inflight[n]
	if !ok {
		return
	}
	delete(b.inflight, n)
	for _, r := range round.reqs {
		r.done <- readResult{index: rs.Index}
	}
}

func (b *readBatches) expire(now time.Time) {
	for n, round := range b.inflight {
		if now.Sub(round.started) > readRoundTimeout {
			delete(b.inflight, n)
			for _, r := range round.reqs {
				r.done <- readResult{err: errReadRetry}
			}
		}
	}
}

func (b *readBatches) failPending(err error) {
	for _, r := range b.pending {
		r.done <- readResult{err: err}
	}
	b.pending = nil
}

func (b *readBatches) failAll(err error) {
	b.failPending(err)
	for n, round := range b.inflight {
		delete(b.inflight, n)
		for _, r := range round.reqs {
			r.done <- readResult{err: err}
		}
	}
}
