package raftlog

import (
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// hardState is kept as plain values so Save can record the caller's HardState without allocating and
// without aliasing a message the caller might reuse.
type hardState struct {
	term, vote, commit uint64
}

func hardStateOf(hs *raftpb.HardState) hardState {
	return hardState{term: hs.GetTerm(), vote: hs.GetVote(), commit: hs.GetCommit()}
}

func (h hardState) proto() *raftpb.HardState {
	return &raftpb.HardState{Term: new(h.term), Vote: new(h.vote), Commit: new(h.commit)}
}

// snapMeta is the metadata of the latest snapshot the state machine durably holds. cs is owned by the
// log (cloned on the way in and out) and may be nil.
type snapMeta struct {
	index, term uint64
	cs          *raftpb.ConfState
}

func snapMetaOf(md *raftpb.SnapshotMetadata) snapMeta {
	s := snapMeta{index: md.GetIndex(), term: md.GetTerm()}
	if md.GetConfState() != nil {
		s.cs = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
	}
	return s
}

func (s snapMeta) proto() *raftpb.SnapshotMetadata {
	md := &raftpb.SnapshotMetadata{Index: new(s.index), Term: new(s.term)}
	if s.cs != nil {
		md.ConfState = proto.Clone(s.cs).(*raftpb.ConfState)
	}
	return md
}

// memState mirrors raft.MemoryStorage: ents[0] is a dummy carrying the index and term of the entry just
// before the first retained one, so Term(FirstIndex()-1) always works.
type memState struct {
	ents []*raftpb.Entry
	hs   hardState
	snap snapMeta
}

func newMemState() memState {
	return memState{ents: []*raftpb.Entry{dummyEntry(0, 0)}}
}

func dummyEntry(index, term uint64) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term)}
}

func (s *memState) offset() uint64    { return s.ents[0].GetIndex() }
func (s *memState) lastIndex() uint64 { return s.offset() + uint64(len(s.ents)) - 1 }

// floor is the highest index that new entries may no longer replace: compacted entries and everything
// the state machine already holds are committed, so a write touching them is stale and is ignored.
func (s *memState) floor() uint64 { return max(s.offset(), s.snap.index) }

func (s *memState) term(i uint64) (uint64, bool) {
	off := s.offset()
	if i < off || i-off >= uint64(len(s.ents)) {
		return 0, false
	}
	return s.ents[i-off].GetTerm(), true
}

// appendEntries adds contiguous entries whose first index is in (offset, lastIndex+1], discarding any held
// entry at or after that index. Entries handed out by Entries are never overwritten in place: a
// truncation copies into a fresh array, exactly as MemoryStorage does.
func (s *memState) appendEntries(ents []*raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	at := ents[0].GetIndex() - s.offset()
	if at == uint64(len(s.ents)) {
		s.ents = append(s.ents, ents...)
		return
	}
	s.ents = append(s.ents[:at:at], ents...)
}

// truncateAfter drops entries after index i (offset <= i <= lastIndex), without reallocating when
// nothing is dropped.
func (s *memState) truncateAfter(i uint64) {
	n := i - s.offset() + 1
	if n < uint64(len(s.ents)) {
		s.ents = s.ents[:n:n]
	}
}

func (s *memState) reset(index, term uint64) {
	s.ents = []*raftpb.Entry{dummyEntry(index, term)}
}

// compact makes entry i the new dummy (offset < i <= lastIndex), in a new array like MemoryStorage.Compact
// because older arrays may still be referenced by slices raft holds.
func (s *memState) compact(i uint64) {
	at := i - s.offset()
	ents := make([]*raftpb.Entry, 1, uint64(len(s.ents))-at)
	ents[0] = dummyEntry(s.ents[at].GetIndex(), s.ents[at].GetTerm())
	s.ents = append(ents, s.ents[at+1:]...)
}
