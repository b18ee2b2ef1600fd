package raftlog

import (
	"fmt"
	"math"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The raft.Storage methods below follow raft.MemoryStorage, except that conditions MemoryStorage panics
// on (hi beyond the last index) are returned as errors wrapping raft.ErrUnavailable.

// InitialState returns the HardState (never nil; empty if none was saved) and the ConfState of the
// latest snapshot record (never nil).
func (l *Log) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := new(raftpb.ConfState)
	if l.st.snap.cs != nil {
		cs = proto.Clone(l.st.snap.cs).(*raftpb.ConfState)
	}
	return l.st.hs.proto(), raftpb.EnsureConfState(cs), nil
}

// Entries returns entries [lo, hi), at least one if any, then as many as fit in maxSize bytes (proto.Size,
// as raft's limitSize). The caller may append to the result; the entries themselves are shared and must
// not be mutated.
func (l *Log) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	off := l.st.offset()
	if lo <= off {
		return nil, raft.ErrCompacted
	}
	if last := l.st.lastIndex(); hi > last+1 || lo > hi {
		return nil, fmt.Errorf("raft log entries [%d, %d) out of bounds (last index %d): %w", lo, hi, last, raft.ErrUnavailable)
	}
	if len(l.st.ents) == 1 {
		return nil, raft.ErrUnavailable
	}
	ents := limitSize(l.st.ents[lo-off:hi-off], maxSize)
	// Full slice expression: an append by the caller must copy rather than overwrite our later entries.
	return ents[:len(ents):len(ents)], nil
}

func limitSize(ents []*raftpb.Entry, maxSize uint64) []*raftpb.Entry {
	if len(ents) == 0 || maxSize == math.MaxUint64 {
		return ents // no limit: skip sizing every entry
	}
	size := uint64(proto.Size(ents[0]))
	for n := 1; n < len(ents); n++ {
		size += uint64(proto.Size(ents[n]))
		if size > maxSize {
			return ents[:n]
		}
	}
	return ents
}

// Term returns the term of entry i, for i in [FirstIndex()-1, LastIndex()].
func (l *Log) Term(i uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i < l.st.offset() {
		return 0, raft.ErrCompacted
	}
	t, ok := l.st.term(i)
	if !ok {
		return 0, raft.ErrUnavailable
	}
	return t, nil
}

func (l *Log) LastIndex() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.lastIndex(), nil
}

func (l *Log) FirstIndex() (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.offset() + 1, nil
}

// Snapshot returns the latest snapshot metadata recorded (by CreateSnapshot or ApplySnapshot), with nil
// Data: the state machine (SQLite) is the snapshot, and its transfer happens outside the log.
func (l *Log) Snapshot() (*raftpb.Snapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return raftpb.EnsureSnapshot(&raftpb.Snapshot{Metadata: l.st.snap.proto()}), nil
}
