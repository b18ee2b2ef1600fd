package raftnode

import (
	"context"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// AppliedIndex is the state machine's position: the last entry it applied, with its term and the
// configuration as of it; callers can wait for it to pass an index.
type AppliedIndex struct {
	mu    sync.Mutex
	idx   uint64
	term  uint64
	cs    *raftpb.ConfState
	moved chan struct{} // closed and replaced whenever idx advances
}

// NewAppliedIndex starts at the given position.
func NewAppliedIndex(idx, term uint64, cs *raftpb.ConfState) *AppliedIndex {
	return &AppliedIndex{idx: idx, term: term, cs: raftpb.EnsureConfState(cs), moved: make(chan struct{})}
}

// Set records the state machine's new position.
func (a *AppliedIndex) Set(idx, term uint64, cs *raftpb.ConfState) {
	a.mu.Lock()
	a.idx, a.term, a.cs = idx, term, cs
	close(a.moved)
	a.moved = make(chan struct{})
	a.mu.Unlock()
}

func (a *AppliedIndex) Index() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.idx
}

func (a *AppliedIndex) ConfState() *raftpb.ConfState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cs
}

// Position is the index, term and configuration, read together.
func (a *AppliedIndex) Position() (idx, term uint64, cs *raftpb.ConfState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.idx, a.term, a.cs
}

// Wait returns once the applied index is at least target.
func (a *AppliedIndex) Wait(ctx context.Context, target uint64) error {
	for {
		a.mu.Lock()
		if a.idx >= target {
			a.mu.Unlock()
			return nil
		}
		moved := a.moved
		a.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
