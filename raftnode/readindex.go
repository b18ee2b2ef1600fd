package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
)

// ReadIndex returns a commit index that covers every write acknowledged before the call. Rounds raft
// drops (no leader, leader change) are retried with a new request context until ctx ends.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	for {
		r := &readRequest{done: make(chan readResult, 1)}
		select {
		case n.in.readc <- r:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-n.stopc:
			return 0, ErrStopped
		}
		var res readResult
		select {
		case res = <-r.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-n.stopc:
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

// readCtx encodes a read round number as raft's request context.
func readCtx(k uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], k)
	return b[:]
}
