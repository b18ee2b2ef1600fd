package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// proposal is a command (or conf change) waiting to be committed and applied.
type proposal struct {
	data []byte
	cc   *raftpb.ConfChangeV2
	id   uint64
	done chan Result
}

// Result is the outcome of a proposal: its log index and what the state machine made of it.
type Result struct {
	Index uint64
	Value any
	Err   error
}

func (p *proposal) fail(err error) {
	select {
	case p.done <- Result{Err: err}:
	default:
	}
}

// matches reports whether e is the entry raft appended for p.
func (p *proposal) matches(e *raftpb.Entry, self uint64, identify func([]byte) (uint64, uint64)) bool {
	if p.cc != nil {
		return e.GetType() == raftpb.EntryConfChangeV2 && bytes.Equal(e.GetData(), p.data)
	}
	if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
		return false
	}
	proposer, id := identify(e.GetData())
	return proposer == self && id == p.id
}

// Propose proposes data, a command in which Config.Identify finds this node's ID and id, and waits until
// its entry is applied (the result is the state machine's) or lost. Only the leader can propose; others
// get ErrNotLeader.
func (n *Node) Propose(ctx context.Context, data []byte, id uint64) (Result, error) {
	return n.proposeAndWait(ctx, &proposal{data: data, id: id, done: make(chan Result, 1)})
}

// ProposeConfChange proposes cc and waits until it is applied. ErrConfDropped means raft did not take it
// (another change was pending, or leadership moved before it committed): it never applies.
func (n *Node) ProposeConfChange(ctx context.Context, cc *raftpb.ConfChangeV2) error {
	_, err := n.proposeAndWait(ctx, &proposal{cc: cc, done: make(chan Result, 1)})
	if errors.Is(err, ErrLeaderLost) {
		return ErrConfDropped
	}
	return err
}

func (n *Node) proposeAndWait(ctx context.Context, p *proposal) (Result, error) {
	select {
	case n.in.propc <- p:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-n.stopc:
		return Result{}, ErrStopped
	}
	select {
	case r := <-p.done:
		return r, r.Err
	case <-ctx.Done():
		// The entry may still be committed and applied later; the caller cannot know.
		return Result{}, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	case <-n.stopc:
		return Result{}, ErrStopped
	}
}

// indexProposals learns the log index of each accepted proposal from the entries raft appended. Each
// entry is matched by content (raft appends clones of what it was given): a command by its proposer and
// request id, a conf change by its encoding. A conf change with no entry was replaced by raft (another was
// pending) and never applies; a command with no entry has an unknown fate, since raft may have sent it.
func (l *loop) indexProposals(ents []*raftpb.Entry) {
	if len(l.unindexed) == 0 {
		return
	}
	for _, e := range ents {
		for i, p := range l.unindexed {
			if p != nil && p.matches(e, l.n.cfg.ID, l.n.cfg.Identify) {
				l.n.waiters.register(e.GetIndex(), p)
				l.unindexed[i] = nil
				break
			}
		}
	}
	for _, p := range l.unindexed {
		switch {
		case p == nil:
		case p.cc != nil:
			p.fail(ErrConfDropped) // raft replaced it with an empty entry: another change was pending
		default:
			p.fail(ErrOutcomeUnknown)
		}
	}
	l.unindexed = l.unindexed[:0]
}

// Deliver is the state machine's word that e is applied with the given result: the caller that proposed
// it, if it waits here, gets it. If another leader's entry took the index, the proposal was never
// committed: ErrLeaderLost.
func (n *Node) Deliver(e *raftpb.Entry, value any) {
	p := n.waiters.take(e.GetIndex())
	if p == nil {
		return
	}
	if !p.matches(e, n.cfg.ID, n.cfg.Identify) {
		p.fail(ErrLeaderLost)
		return
	}
	select {
	case p.done <- Result{Index: e.GetIndex(), Value: value}:
	default:
	}
}

// FailWaiting answers every caller waiting for an entry at or below upTo (0: all of them) with err: their
// entries were replaced by a snapshot, or cannot be applied here now.
func (n *Node) FailWaiting(upTo uint64, err error) {
	if upTo == 0 {
		n.waiters.failAll(err)
		return
	}
	n.waiters.failUpTo(upTo, err)
}

// waiters maps the log index of each proposal this node made to the caller waiting for it.
type waiters struct {
	mu      sync.Mutex
	byIndex map[uint64]*proposal
}

func newWaiters() *waiters { return &waiters{byIndex: map[uint64]*proposal{}} }

func (w *waiters) register(index uint64, p *proposal) {
	w.mu.Lock()
	if old := w.byIndex[index]; old != nil {
		// This node's log was rewritten at the index, but another node may still hold the old entry
		// and commit it later.
		old.fail(ErrOutcomeUnknown)
	}
	w.byIndex[index] = p
	w.mu.Unlock()
}

func (w *waiters) take(index uint64) *proposal {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.byIndex[index]
	delete(w.byIndex, index)
	return p
}

func (w *waiters) failUpTo(index uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, p := range w.byIndex {
		if i <= index {
			p.fail(err)
			delete(w.byIndex, i)
		}
	}
}

func (w *waiters) failAll(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, p := range w.byIndex {
		p.fail(err)
		delete(w.byIndex, i)
	}
}
