package raftlog

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// harness drives a Log and the model with the same operations, shaped like what raft produces: terms
// only grow, conflicts never touch committed entries, commit never passes the last index.
type harness struct {
	t       *testing.T
	dir     string
	opts    Options
	l       *Log
	m       *model
	rng     *rand.Rand
	term    uint64
	written map[uint64]*raftpb.Entry

	// held is a slice returned by Entries earlier; it must never change under the caller.
	held     []*raftpb.Entry
	heldCopy []*raftpb.Entry
}

func newHarness(t *testing.T, seed uint64, segSize int64) *harness {
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, opts: quietOpts(segSize), m: newModel(),
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), term: 1, written: map[uint64]*raftpb.Entry{}}
	h.l = mustOpen(t, dir, h.opts)
	return h
}

func (h *harness) data() []byte {
	switch n := h.rng.IntN(10); {
	case n == 0:
		return nil
	case n < 8:
		b := make([]byte, h.rng.IntN(200))
		for i := range b {
			b[i] = byte(h.rng.UintN(256))
		}
		return b
	default:
		return make([]byte, 300+h.rng.IntN(1500)) // occasionally large, to cross segment sizes mid-batch
	}
}

func (h *harness) save(hs *raftpb.HardState, es []*raftpb.Entry) {
	h.t.Helper()
	mustSave(h.t, h.l, hs, es, h.rng.IntN(3) > 0)
	h.m.save(hs, es)
	for _, e := range es {
		h.written[e.GetIndex()] = e
	}
}

func (h *harness) hs(commit uint64) *raftpb.HardState {
	return hardSt(h.term, 1+h.rng.Uint64N(3), commit)
}

func (h *harness) step(op int) {
	t, l, m := h.t, h.l, h.m
	floor := max(m.offset(), m.snapIndex())
	switch r := h.rng.IntN(100); {
	case r < 40: // append a batch, maybe advancing commit
		last := m.last()
		n := 1 + h.rng.Uint64N(8)
		es := make([]*raftpb.Entry, 0, n)
		for i := last + 1; i <= last+n; i++ {
			es = append(es, ent(i, h.term, h.data()))
		}
		var hs *raftpb.HardState
		if h.rng.IntN(3) > 0 {
			hs = h.hs(m.hs.commit + h.rng.Uint64N(last+n-m.hs.commit+1))
		}
		h.save(hs, es)
	case r < 50: // leader change: overwrite an uncommitted suffix
		lo := max(floor, m.hs.commit)
		if m.last() <= lo {
			return
		}
		i := lo + 1 + h.rng.Uint64N(m.last()-lo)
		h.term++
		n := 1 + h.rng.Uint64N(5)
		es := make([]*raftpb.Entry, 0, n)
		for j := i; j < i+n; j++ {
			es = append(es, ent(j, h.term, h.data()))
		}
		h.save(h.hs(m.hs.commit), es)
	case r < 56: // hard state only (vote / term change)
		if h.rng.IntN(2) == 0 {
			h.term++
		}
		h.save(h.hs(m.hs.commit), nil)
	case r < 58: // nothing to save
		h.save(nil, nil)
	case r < 68: // snapshot at some applied index
		if m.hs.commit <= m.snapIndex() || h.rng.IntN(8) == 0 {
			i := m.snapIndex()
			if err := l.CreateSnapshot(i, nil); !errors.Is(err, raft.ErrSnapOutOfDate) {
				t.Fatalf("op %d: CreateSnapshot(%d) at snapshot index: err %v", op, i, err)
			}
			return
		}
		i := m.snapIndex() + 1 + h.rng.Uint64N(m.hs.commit-m.snapIndex())
		var cs *raftpb.ConfState
		if h.rng.IntN(3) > 0 {
			cs = confState(1, 2, uint64(3+h.rng.IntN(3)))
		}
		if err := l.CreateSnapshot(i, cs); err != nil {
			t.Fatalf("op %d: CreateSnapshot(%d): %v", op, i, err)
		}
		if err := m.createSnapshot(i, cs); err != nil {
			t.Fatal(err)
		}
	case r < 78: // compaction, sometimes out of range
		switch k := h.rng.IntN(6); {
		case k == 0:
			if err := l.Compact(m.offset()); !errors.Is(err, raft.ErrCompacted) {
				t.Fatalf("op %d: Compact(offset %d): err %v, want ErrCompacted", op, m.offset(), err)
			}
		case k == 1 && m.snapIndex() < m.last():
			if err := l.Compact(m.snapIndex() + 1); err == nil {
				t.Fatalf("op %d: Compact beyond snapshot index succeeded", op)
			}
		case m.snapIndex() > m.offset():
			c := m.offset() + 1 + h.rng.Uint64N(m.snapIndex()-m.offset())
			before := len(segFiles(t, h.dir))
			if err := l.Compact(c); err != nil {
				t.Fatalf("op %d: Compact(%d): %v", op, c, err)
			}
			if err := m.compact(c); err != nil {
				t.Fatal(err)
			}
			if after := len(segFiles(t, h.dir)); after > before || after != l.Stats().Segments {
				t.Fatalf("op %d: Compact: %d segment files before, %d after, Stats %d", op, before, after, l.Stats().Segments)
			}
		}
	case r < 83: // install a leader's snapshot
		if h.rng.IntN(6) == 0 && m.snapIndex() > 0 {
			s := snapshot(m.snapIndex(), h.term, confState(1))
			if err := l.ApplySnapshot(s); !errors.Is(err, raft.ErrSnapOutOfDate) {
				t.Fatalf("op %d: stale ApplySnapshot: err %v", op, err)
			}
			return
		}
		i := m.hs.commit + 1 + h.rng.Uint64N(m.last()-m.hs.commit+10)
		term := h.term + 1
		if i <= m.last() && h.rng.IntN(2) == 0 {
			term = m.term(i) // the leader agrees with our entry there
		} else {
			h.term = term
		}
		s := snapshot(i, term, confState(1, 2, 3))
		s.Data = []byte("state machine image, not stored by the log")
		if err := l.ApplySnapshot(s); err != nil {
			t.Fatalf("op %d: ApplySnapshot(%d): %v", op, i, err)
		}
		if err := m.applySnapshot(s); err != nil {
			t.Fatal(err)
		}
	case r < 91: // restart, cleanly or not
		h.reopen(h.rng.IntN(2) == 0)
	default: // reads with a size limit behave like MemoryStorage's
		if m.last() <= m.offset() {
			return
		}
		lo := m.offset() + 1 + h.rng.Uint64N(m.last()-m.offset())
		hi := lo + h.rng.Uint64N(m.last()-lo+2)
		maxSize := h.rng.Uint64N(2000)
		got, gerr := l.Entries(lo, hi, maxSize)
		want, werr := m.ms.Entries(lo, hi, maxSize)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("op %d: Entries(%d,%d,%d) err %v, model %v", op, lo, hi, maxSize, gerr, werr)
		}
		compareEntries(t, got, want)
		if len(got) > 0 {
			h.held = got
			h.heldCopy = append([]*raftpb.Entry(nil), got...)
			_ = append(got, ent(0, 0, nil)) // callers may append; that must not touch the log
		}
	}
}

func (h *harness) reopen(clean bool) {
	h.t.Helper()
	if clean {
		if err := h.l.Close(); err != nil {
			h.t.Fatal(err)
		}
	} else {
		crash(h.l)
	}
	h.l = mustOpen(h.t, h.dir, h.opts)
	checkLog(h.t, h.l, h.m, false, h.written)
	// Re-align the front: Open cannot know how far the last Compact/ApplySnapshot went inside a segment.
	if fi, _ := h.l.FirstIndex(); fi-1 < h.m.offset() {
		if err := h.l.Compact(h.m.offset()); err != nil {
			h.t.Fatalf("re-align Compact(%d): %v", h.m.offset(), err)
		}
	}
	checkLog(h.t, h.l, h.m, true, nil)
}

func (h *harness) checkHeld() {
	for i := range h.held {
		if h.held[i] != h.heldCopy[i] {
			h.t.Fatalf("slice returned by Entries was overwritten at position %d", i)
		}
	}
}

func TestRandomizedAgainstMemoryStorage(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		h := newHarness(t, seed, 4<<10)
		for op := 0; op < 400; op++ {
			h.step(op)
			h.checkHeld()
			checkLog(t, h.l, h.m, true, nil)
		}
		h.reopen(true)
		if seq := h.l.active().seq; seq < 10 {
			t.Errorf("seed %d: only %d segments ever cut; SegmentSize is not exercised", seed, seq)
		}
		if err := h.l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEntriesMaxSize pins the limitSize semantics: at least one entry, then only while the running
// proto.Size total stays within maxSize.
func TestEntriesMaxSize(t *testing.T) {
	l := mustOpen(t, t.TempDir(), quietOpts(0))
	defer l.Close()
	es := ents(1, 10, 1)
	mustSave(t, l, nil, es, false)
	one := uint64(proto.Size(es[0]))
	for _, tc := range []struct {
		maxSize uint64
		want    int
	}{{0, 1}, {one, 1}, {2*one - 1, 1}, {2 * one, 2}, {5 * one, 5}, {math.MaxUint64, 9}} {
		got, err := l.Entries(1, 10, tc.maxSize)
		if err != nil || len(got) != tc.want {
			t.Errorf("Entries(1,10,%d) = %d entries, %v; want %d", tc.maxSize, len(got), err, tc.want)
		}
	}
	if _, err := l.Entries(1, 12, math.MaxUint64); !errors.Is(err, raft.ErrUnavailable) {
		t.Errorf("Entries past last: %v", err)
	}
	if got, err := l.Entries(4, 4, 0); err != nil || len(got) != 0 {
		t.Errorf("Entries(4,4) = %v, %v", got, err)
	}
}
