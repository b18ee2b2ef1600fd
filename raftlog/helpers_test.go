package raftlog

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// model is the reference the log is compared against: raft.MemoryStorage plus the last HardState, with
// the two rules MemoryStorage lacks (stale entries at or below the snapshot are ignored; ApplySnapshot
// raises the commit index).
type model struct {
	ms *raft.MemoryStorage
	hs hardState
}

func newModel() *model { return &model{ms: raft.NewMemoryStorage()} }

func (m *model) offset() uint64 {
	fi, _ := m.ms.FirstIndex()
	return fi - 1
}

func (m *model) last() uint64 {
	li, _ := m.ms.LastIndex()
	return li
}

func (m *model) snapIndex() uint64 {
	s, _ := m.ms.Snapshot()
	return s.GetMetadata().GetIndex()
}

func (m *model) term(i uint64) uint64 {
	t, err := m.ms.Term(i)
	if err != nil {
		panic(err)
	}
	return t
}

func (m *model) save(hs *raftpb.HardState, ents []*raftpb.Entry) {
	floor := max(m.offset(), m.snapIndex())
	for len(ents) > 0 && ents[0].GetIndex() <= floor {
		ents = ents[1:]
	}
	if err := m.ms.Append(ents); err != nil {
		panic(err)
	}
	if !raft.IsEmptyHardState(hs) {
		m.hs = hardStateOf(hs)
	}
}

func (m *model) createSnapshot(i uint64, cs *raftpb.ConfState) error {
	_, err := m.ms.CreateSnapshot(i, cs, nil)
	return err
}

func (m *model) compact(c uint64) error { return m.ms.Compact(c) }

func (m *model) applySnapshot(s *raftpb.Snapshot) error {
	if err := m.ms.ApplySnapshot(s); err != nil {
		return err
	}
	m.hs.commit = max(m.hs.commit, s.GetMetadata().GetIndex())
	return nil
}

func normCS(cs *raftpb.ConfState) *raftpb.ConfState {
	if cs == nil {
		return raftpb.EnsureConfState(nil)
	}
	return raftpb.EnsureConfState(proto.Clone(cs).(*raftpb.ConfState))
}

// checkLog compares every Storage method of l with m. With exact=false the log may additionally hold
// older entries in front of the model's first index (a reopened log keeps whole segments that Compact or
// ApplySnapshot made logically redundant); those must equal what was written at that index (written may
// be nil to skip that check).
func checkLog(t testing.TB, l *Log, m *model, exact bool, written map[uint64]*raftpb.Entry) {
	t.Helper()
	mFirst, mLast := m.offset()+1, m.last()
	lFirst, _ := l.FirstIndex()
	lLast, _ := l.LastIndex()
	if lLast != mLast {
		t.Fatalf("LastIndex = %d, model %d", lLast, mLast)
	}
	if exact && lFirst != mFirst || lFirst > mFirst {
		t.Fatalf("FirstIndex = %d, model %d (exact=%v)", lFirst, mFirst, exact)
	}
	for i := mFirst - 1; i <= mLast; i++ {
		lt, err := l.Term(i)
		if err != nil || lt != m.term(i) {
			t.Fatalf("Term(%d) = %d, %v; model %d", i, lt, err, m.term(i))
		}
	}
	if exact {
		if _, err := l.Term(mFirst - 2); mFirst >= 2 && !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Term(%d) before first: err %v, want ErrCompacted", mFirst-2, err)
		}
		if _, err := l.Entries(mFirst-1, mFirst, math.MaxUint64); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Entries(first-1): err %v, want ErrCompacted", err)
		}
	}
	if _, err := l.Term(mLast + 1); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Term(last+1): err %v, want ErrUnavailable", err)
	}
	if mLast >= mFirst {
		got, err := l.Entries(mFirst, mLast+1, math.MaxUint64)
		if err != nil {
			t.Fatalf("Entries(%d, %d): %v", mFirst, mLast+1, err)
		}
		want, _ := m.ms.Entries(mFirst, mLast+1, math.MaxUint64)
		compareEntries(t, got, want)
	} else if _, err := l.Entries(mFirst, mFirst, math.MaxUint64); exact && !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries on empty log: err %v, want ErrUnavailable", err)
	}
	if lFirst < mFirst {
		extra, err := l.Entries(lFirst, mFirst, math.MaxUint64)
		if err != nil {
			t.Fatalf("Entries(%d, %d) (extra front): %v", lFirst, mFirst, err)
		}
		if mFirst-1 > m.snapIndex() {
			t.Fatalf("log keeps entries up to %d beyond model first %d but snapshot is only %d", mFirst-1, mFirst, m.snapIndex())
		}
		for _, e := range extra {
			if w := written[e.GetIndex()]; written != nil && !proto.Equal(e, w) {
				t.Fatalf("extra front entry %d = %v, written %v", e.GetIndex(), e, w)
			}
		}
	}
	hs, cs, err := l.InitialState()
	if err != nil || cs == nil || hs == nil {
		t.Fatalf("InitialState: %v, %v, %v", hs, cs, err)
	}
	if got := hardStateOf(hs); got != m.hs {
		t.Fatalf("HardState = %+v, model %+v", got, m.hs)
	}
	_, mcs, _ := m.ms.InitialState()
	if !proto.Equal(normCS(cs), normCS(mcs)) {
		t.Fatalf("ConfState = %v, model %v", cs, mcs)
	}
	ls, err := l.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	mss, _ := m.ms.Snapshot()
	lm, mm := ls.GetMetadata(), mss.GetMetadata()
	if lm.GetIndex() != mm.GetIndex() || lm.GetTerm() != mm.GetTerm() || !proto.Equal(normCS(lm.GetConfState()), normCS(mm.GetConfState())) {
		t.Fatalf("Snapshot = %v, model %v", lm, mm)
	}
	if ls.GetData() != nil {
		t.Fatalf("Snapshot data = %q, want nil", ls.GetData())
	}
	st := l.Stats()
	if st.FirstIndex != lFirst || st.LastIndex != lLast || st.SnapshotIndex != mm.GetIndex() || st.SnapshotTerm != mm.GetTerm() || st.Segments < 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func compareEntries(t testing.TB, got, want []*raftpb.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func ent(index, term uint64, data []byte) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Type: raftpb.EntryNormal.Enum(), Data: data}
}

func ents(from, to, term uint64) []*raftpb.Entry {
	var es []*raftpb.Entry
	for i := from; i <= to; i++ {
		es = append(es, ent(i, term, []byte{byte(i), byte(term), 'x'}))
	}
	return es
}

func hardSt(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func confState(voters ...uint64) *raftpb.ConfState {
	return &raftpb.ConfState{Voters: voters}
}

func snapshot(index, term uint64, cs *raftpb.ConfState) *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: cs}}
}

// logBuffer captures warnings so tests can assert on repairs and keep test output quiet.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func quietOpts(segSize int64) Options {
	return Options{SegmentSize: segSize, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l
}

func mustSave(t testing.TB, l *Log, hs *raftpb.HardState, es []*raftpb.Entry, sync bool) {
	t.Helper()
	if err := l.Save(hs, es, sync); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// crash drops the Log's file handles without fsync or any other shutdown work, as a kill -9 would
// (the page cache survives, as it does when only the process dies).
func crash(l *Log) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Close()
	l.dirf.Close()
	l.closed = true
}

func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range segFiles(t, src) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
