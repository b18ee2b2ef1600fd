package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// journal records every operation applied to a log so that the expected state after any prefix of the
// records in the last segment can be rebuilt independently of the code under test. Record sizes come
// from the format spec (frame + type byte + proto.Size), not from the implementation.
type journal struct {
	t    *testing.T
	dir  string
	l    *Log
	ops  []jop
	rng  *rand.Rand
	term uint64
	m    *model // state after all ops, used to generate sensible next ops
	// noCommit keeps the commit index still, so later segments hold only uncommitted entries.
	noCommit bool
}

type jop struct {
	kind  string // "save", "snap", "compact", "apply"
	hs    *raftpb.HardState
	ents  []*raftpb.Entry
	index uint64
	cs    *raftpb.ConfState
	snap  *raftpb.Snapshot
	recs  []int64 // sizes of the records this op appends to the active segment
	seq   uint64  // active segment seq after the op
}

func newJournal(t *testing.T, seed uint64, segSize int64) *journal {
	j := &journal{t: t, dir: t.TempDir(), rng: rand.New(rand.NewPCG(seed, 7)), term: 1, m: newModel()}
	j.l = mustOpen(t, j.dir, quietOpts(segSize))
	return j
}

func recSize(m proto.Message) int64 { return frameSize + 1 + int64(proto.Size(m)) }

func (j *journal) reopen(segSize int64) {
	if err := j.l.Close(); err != nil {
		j.t.Fatal(err)
	}
	j.l = mustOpen(j.t, j.dir, quietOpts(segSize))
}

func (j *journal) add(op jop) {
	t := j.t
	before := j.l.active().seq
	sizeBefore := j.l.active().size
	switch op.kind {
	case "save":
		mustSave(t, j.l, op.hs, op.ents, j.rng.IntN(2) == 0)
		j.m.save(op.hs, op.ents)
		for _, e := range op.ents {
			op.recs = append(op.recs, recSize(e))
		}
		if !raft.IsEmptyHardState(op.hs) {
			op.recs = append(op.recs, recSize(op.hs))
		}
	case "snap":
		if err := j.l.CreateSnapshot(op.index, op.cs); err != nil {
			t.Fatal(err)
		}
		if err := j.m.createSnapshot(op.index, op.cs); err != nil {
			t.Fatal(err)
		}
		md := &raftpb.SnapshotMetadata{Index: new(op.index), Term: new(j.m.term(op.index)), ConfState: op.cs}
		op.recs = []int64{recSize(md)}
	case "compact":
		if err := j.l.Compact(op.index); err != nil {
			t.Fatal(err)
		}
		if err := j.m.compact(op.index); err != nil {
			t.Fatal(err)
		}
	case "apply":
		if err := j.l.ApplySnapshot(op.snap); err != nil {
			t.Fatal(err)
		}
		if err := j.m.applySnapshot(op.snap); err != nil {
			t.Fatal(err)
		}
	}
	op.seq = j.l.active().seq
	if op.seq == before {
		var sum int64
		for _, r := range op.recs {
			sum += r
		}
		if got := j.l.active().size - sizeBefore; got != sum {
			t.Fatalf("%s wrote %d bytes, format says %d", op.kind, got, sum)
		}
	}
	j.ops = append(j.ops, op)
}

// randomOp appends entries, rewrites an uncommitted suffix, changes the hard state or snapshots.
func (j *journal) randomOp() {
	m := j.m
	switch r := j.rng.IntN(10); {
	case r < 5:
		last := m.last()
		n := 1 + j.rng.Uint64N(4)
		var es []*raftpb.Entry
		for i := last + 1; i <= last+n; i++ {
			es = append(es, ent(i, j.term, make([]byte, j.rng.IntN(60))))
		}
		var hs *raftpb.HardState
		if j.rng.IntN(2) == 0 && !j.noCommit {
			hs = hardSt(j.term, 1, m.hs.commit+j.rng.Uint64N(last+n-m.hs.commit+1))
		}
		j.add(jop{kind: "save", hs: hs, ents: es})
	case r < 7 && !j.noCommit:
		lo := max(m.offset(), m.snapIndex(), m.hs.commit)
		if m.last() <= lo {
			return
		}
		i := lo + 1 + j.rng.Uint64N(m.last()-lo)
		j.term++
		j.add(jop{kind: "save", hs: hardSt(j.term, 2, m.hs.commit), ents: ents(i, i+j.rng.Uint64N(3), j.term)})
	case r < 8 && !j.noCommit:
		j.term++
		j.add(jop{kind: "save", hs: hardSt(j.term, 3, m.hs.commit)})
	default:
		if m.hs.commit > m.snapIndex() {
			i := m.snapIndex() + 1 + j.rng.Uint64N(m.hs.commit-m.snapIndex())
			j.add(jop{kind: "snap", index: i, cs: confState(1, 2, 3)})
		}
	}
}

// modelAt rebuilds the state after ops[:n] plus the first k records of ops[n].
func (j *journal) modelAt(n, k int) *model {
	m := newModel()
	for i, op := range j.ops[:n+1] {
		if i == n && k == 0 {
			break
		}
		switch op.kind {
		case "save":
			es, hs := op.ents, op.hs
			if i == n {
				es = es[:min(k, len(es))]
				if k <= len(op.ents) {
					hs = nil
				}
			}
			m.save(hs, es)
		case "snap":
			m.createSnapshot(op.index, op.cs)
		case "compact":
			m.compact(op.index)
		case "apply":
			m.applySnapshot(op.snap)
		}
	}
	return m
}

// truncModel returns a copy of m without the entries after index prev.
func truncModel(m *model, prev uint64) *model {
	ss, _ := m.ms.Snapshot()
	cs := ss.GetMetadata().GetConfState()
	off := m.offset()
	t := &model{ms: raft.NewMemoryStorage(), hs: m.hs}
	if err := t.ms.ApplySnapshot(snapshot(off, m.term(off), cs)); err != nil {
		panic(err)
	}
	if prev > off {
		es, err := m.ms.Entries(off+1, prev+1, math.MaxUint64)
		if err != nil {
			panic(err)
		}
		t.ms.Append(es)
	}
	if si := ss.GetMetadata().GetIndex(); si > off {
		if _, err := t.ms.CreateSnapshot(si, cs, nil); err != nil {
			panic(err)
		}
	}
	return t
}

// lastSegment describes the final segment: its path, header size and the expected model for a given
// number of valid bytes in it.
type lastSegment struct {
	path    string
	size    int64
	header  int64
	creator int // index of the op that created it, -1 for Open
	others  int // number of other segment files
}

func (j *journal) lastSegment() lastSegment {
	files := segFiles(j.t, j.dir)
	ls := lastSegment{path: files[len(files)-1], others: len(files) - 1, creator: -1}
	b, err := os.ReadFile(ls.path)
	if err != nil {
		j.t.Fatal(err)
	}
	ls.size = int64(len(b))
	ls.header = frameSize + int64(binary.LittleEndian.Uint32(b))
	// The creator is the first op that left this segment active; seq 1 was created by Open.
	if final := j.l.active().seq; final > 1 {
		for i, op := range j.ops {
			if op.seq == final {
				ls.creator = i
				break
			}
		}
	}
	return ls
}

// expectAt returns the model for a last segment cut to n bytes, and the start offset of the record that
// contains byte n (or n itself at a boundary): what a byte flip at n must fall back to.
func (j *journal) expectAt(ls lastSegment, n int64) (*model, int64) {
	if n < ls.header {
		if ls.creator < 0 || ls.others == 0 {
			return newModel(), 0
		}
		return j.modelAt(ls.creator, 0), 0
	}
	pos := ls.header
	q := ls.creator + 1
	if ls.creator >= 0 && j.ops[ls.creator].kind == "save" {
		q = ls.creator // its records follow the header it cut
	}
	for ; q < len(j.ops); q++ {
		for k, r := range j.ops[q].recs {
			if pos+r > n {
				m := j.modelAt(q, k)
				if op := j.ops[q]; q == ls.creator && k == 0 && len(op.ents) > 0 && op.ents[0].GetIndex() <= m.last() {
					// A Save that rewrites the log cuts its segment at the rewrite point, so the header
					// alone already drops the (uncommitted) entries being replaced.
					m = truncModel(m, op.ents[0].GetIndex()-1)
				}
				return m, pos
			}
			pos += r
		}
	}
	if pos != ls.size {
		j.t.Fatalf("records add up to %d bytes, segment has %d", pos, ls.size)
	}
	return j.modelAt(len(j.ops)-1, len(j.ops[len(j.ops)-1].recs)+1), pos
}

// scenario builds a log whose last segment was created in the given way and then filled with ~5 KiB of
// mixed records.
func scenario(t *testing.T, kind string, seed uint64) *journal {
	const small, big = 1 << 10, 1 << 20
	seg := int64(small)
	if kind == "single" {
		seg = big
	}
	j := newJournal(t, seed, seg)
	if kind != "single" {
		for j.l.active().seq < 4 {
			j.randomOp()
		}
		if j.m.hs.commit > j.m.snapIndex() {
			j.add(jop{kind: "snap", index: j.m.hs.commit, cs: confState(1, 2)})
		}
		if j.m.snapIndex() > j.m.offset()+1 {
			j.add(jop{kind: "compact", index: j.m.snapIndex() - 1})
		}
		j.noCommit = kind == "truncate"
		for j.l.active().seq < 6 {
			j.randomOp()
		}
		j.noCommit = false
		seq := j.l.active().seq
		switch kind {
		case "sizecut":
			for j.l.active().seq == seq {
				last := j.m.last()
				j.add(jop{kind: "save", hs: hardSt(j.term, 1, j.m.hs.commit), ents: ents(last+1, last+3, j.term)})
			}
		case "apply":
			i := j.m.last() + 5
			j.term++
			j.add(jop{kind: "apply", snap: snapshot(i, j.term, confState(1, 2, 3))})
		case "truncate":
			// Rewrite from inside an earlier segment: everything past commit is uncommitted.
			prev := j.l.active().prevIndex
			lo := max(j.m.hs.commit, j.m.snapIndex(), j.m.offset())
			if prev <= lo {
				t.Fatalf("scenario truncate: active prevIndex %d not above commit %d", prev, lo)
			}
			j.term++
			j.add(jop{kind: "save", hs: hardSt(j.term, 2, j.m.hs.commit), ents: ents(lo+1, lo+2, j.term)})
		}
		if j.l.active().seq != seq+1 {
			t.Fatalf("scenario %s did not cut exactly one segment (seq %d -> %d)", kind, seq, j.l.active().seq)
		}
		j.reopen(big)
	}
	for j.l.active().size < 2<<10 {
		j.randomOp()
	}
	return j
}

// trialStep is 1 (every offset) normally; the race detector makes each trial ~10x slower, so -race runs
// a deterministic sample instead.
func trialStep() int64 {
	if raceEnabled {
		return 11
	}
	return 1
}

// noFsync turns device flushes off for exhaustive parsing tests; durability ordering is not what they check.
func noFsync(t *testing.T) {
	old := fsync
	fsync = func(*os.File) error { return nil }
	t.Cleanup(func() { fsync = old })
}

var scenarios = []string{"single", "sizecut", "apply", "truncate"}

// fixture is a scratch copy of a log directory that is restored cheaply before each trial: only files
// whose size changed (or that disappeared) are rewritten, and the last segment is replaced by the trial's
// bytes. Creating thousands of fresh directories is what would make these tests slow.
type fixture struct {
	t    *testing.T
	dir  string
	orig map[string][]byte
	last string
}

func newFixture(t *testing.T, src string, ls lastSegment) *fixture {
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "log"), orig: map[string][]byte{}, last: filepath.Base(ls.path)}
	copyDir(t, src, f.dir)
	for _, p := range segFiles(t, f.dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f.orig[filepath.Base(p)] = b
	}
	return f
}

// prepare restores the directory and gives the last segment the bytes mutate makes of its original.
func (f *fixture) prepare(mutate func([]byte) []byte) { f.prepareFile(f.last, mutate) }

// prepareFile restores the directory and gives file target the bytes mutate makes of its original.
// Files are overwritten in place and then cut to length, never truncated to zero and rewritten: ext4
// flushes such a file on close (auto_da_alloc), and creating inodes is the other big per-trial cost.
func (f *fixture) prepareFile(target string, mutate func([]byte) []byte) {
	for _, p := range segFiles(f.t, f.dir) {
		if _, ok := f.orig[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	for name, b := range f.orig {
		p := filepath.Join(f.dir, name)
		if name == target {
			b = mutate(append([]byte(nil), b...))
		} else if fi, err := os.Stat(p); err == nil && fi.Size() == int64(len(b)) {
			continue
		}
		fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := fh.WriteAt(b, 0); err != nil {
			f.t.Fatal(err)
		}
		if err := fh.Truncate(int64(len(b))); err != nil {
			f.t.Fatal(err)
		}
		if err := fh.Close(); err != nil {
			f.t.Fatal(err)
		}
	}
}

// checkAppendable saves one more entry and hard state into a repaired log and checks they survive a
// reopen together with the repaired state.
type trialContext struct{ n int64 }

// failContext makes a failing trial report which offset it was on.
func failContext(t *testing.T, ls lastSegment, what string) *trialContext {
	c := &trialContext{n: -1}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last segment %s (%d bytes, header %d, created by op %d): %s %d",
				filepath.Base(ls.path), ls.size, ls.header, ls.creator, what, c.n)
		}
	})
	return c
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func checkAppendable(t *testing.T, dir string, l *Log, m *model) {
	t.Helper()
	last := m.last()
	e := ent(last+1, 1000, []byte("after repair"))
	hs := hardSt(1000, 1, m.hs.commit)
	mustSave(t, l, hs, []*raftpb.Entry{e}, true)
	m.save(hs, []*raftpb.Entry{e})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := mustOpen(t, dir, quietOpts(1<<20))
	defer l2.Close()
	checkLog(t, l2, m, false, nil)
}

func TestTornTailEveryOffset(t *testing.T) {
	noFsync(t)
	for i, kind := range scenarios {
		t.Run(kind, func(t *testing.T) {
			j := scenario(t, kind, uint64(i+1))
			crash(j.l)
			ls := j.lastSegment()
			if ls.size >= 16<<10 {
				t.Fatalf("last segment is %d bytes; test expects every offset < 16 KiB", ls.size)
			}
			fx := newFixture(t, j.dir, ls)
			dir := fx.dir
			ctx := failContext(t, ls, "cut at")
			for n := int64(0); n <= ls.size; n += trialStep() {
				fx.prepare(func(b []byte) []byte { return b[:n] })
				want, boundary := j.expectAt(ls, n)
				ctx.n = n
				var logs logBuffer
				opts := quietOpts(1 << 20)
				opts.Logger = slogTo(&logs)
				l, err := Open(dir, opts)
				if err != nil {
					t.Fatalf("cut at %d: Open: %v", n, err)
				}
				checkLog(t, l, want, false, nil)
				if n != boundary {
					w := logs.String()
					if !strings.Contains(w, filepath.Base(ls.path)) || !strings.Contains(w, fmt.Sprintf("offset=%d", boundary)) ||
						!strings.Contains(w, fmt.Sprintf("dropped_bytes=%d", n-boundary)) {
						t.Fatalf("cut at %d: repair warning missing file/offset %d/dropped bytes: %q", n, boundary, w)
					}
				}
				checkAppendable(t, dir, l, want)
			}
		})
	}
}

func TestCorruptLastSegmentEveryOffset(t *testing.T) {
	noFsync(t)
	for i, kind := range scenarios {
		t.Run(kind, func(t *testing.T) {
			j := scenario(t, kind, uint64(i+10))
			crash(j.l)
			ls := j.lastSegment()
			fx := newFixture(t, j.dir, ls)
			dir := fx.dir
			ctx := failContext(t, ls, "byte flipped at")
			pristine, err := os.ReadFile(ls.path)
			if err != nil {
				t.Fatal(err)
			}
			seq, _ := strconv.ParseUint(filepath.Base(ls.path)[:16], 16, 64)
			for o := int64(0); o < ls.size; o += trialStep() {
				ctx.n = o
				fx.prepare(func(b []byte) []byte { b[o] ^= 1 << (o % 8); return b })
				// Records ending at or before o are intact; the one containing o must be rejected.
				want, _ := j.expectAt(ls, o)
				l, err := Open(dir, quietOpts(1<<20))
				if o < ls.header && !headerDamageLooksTorn(pristine, o, ls, seq) {
					// A damaged header with records behind it is not a crash during creation: Open must
					// refuse rather than drop what follows.
					if err == nil || !strings.Contains(err.Error(), filepath.Base(ls.path)) || !errors.Is(err, ErrCorrupt) {
						t.Fatalf("flip at %d in the header: Open = %v, want an error naming the segment", o, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("flip at %d: Open: %v", o, err)
				}
				checkLog(t, l, want, false, nil)
				if o%7 == 0 {
					checkAppendable(t, dir, l, want)
				} else {
					l.Close()
				}
			}
		})
	}
}

func TestCorruptEarlierSegmentIsAnError(t *testing.T) {
	noFsync(t)
	j := scenario(t, "sizecut", 42)
	crash(j.l)
	files := segFiles(t, j.dir)
	victim := filepath.Base(files[len(files)-2])
	fx := newFixture(t, j.dir, j.lastSegment())
	p := filepath.Join(fx.dir, victim)
	size := int64(len(fx.orig[victim]))
	for o := int64(0); o < size; o += trialStep() {
		var b []byte
		fx.prepareFile(victim, func(orig []byte) []byte { orig[o] ^= 0x80; b = orig; return orig })
		dir := fx.dir
		l, err := Open(dir, quietOpts(1<<20))
		if err == nil {
			l.Close()
			t.Fatalf("flip at offset %d of %s: Open succeeded", o, victim)
		}
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("flip at offset %d: error does not name the file: %v", o, err)
		}
		// The damaged file must be left alone for a human to inspect.
		if after, _ := os.ReadFile(p); string(after) != string(b) {
			t.Fatalf("flip at offset %d: Open modified the corrupt earlier segment", o)
		}
	}
}

// headerDamageLooksTorn reports whether flipping the byte at o of a segment's header leaves what a crash
// during creation leaves (nothing after the header record, by its length field), and the segment is one
// that may be dropped (not the only one unless it is the first ever written).
func headerDamageLooksTorn(pristine []byte, o int64, ls lastSegment, seq uint64) bool {
	b := append([]byte(nil), pristine...)
	b[o] ^= 1 << (o % 8)
	end := int64(frameSize) + int64(binary.LittleEndian.Uint32(b[:4]))
	if end < int64(len(b)) {
		return false
	}
	return ls.others > 0 || seq == 1
}

// A record cut short is torn (safe to drop); a whole record that is wrong is corrupt (the node may have
// lost acknowledged data), and Repaired says which.
func TestRepairSaysTornOrCorrupt(t *testing.T) {
	noFsync(t)
	for _, tc := range []struct {
		name    string
		damage  func(b []byte) []byte
		corrupt bool
	}{
		{"partial record appended", func(b []byte) []byte { return append(b, 0x40, 0, 0, 0, 1, 2, 3, 4, 9) }, false},
		{"zeros appended", func(b []byte) []byte { return append(b, make([]byte, 64)...) }, false},
		{"last record cut", func(b []byte) []byte { return b[:len(b)-3] }, false},
		{"byte flipped in the last record", func(b []byte) []byte { b[len(b)-2] ^= 0x10; return b }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, quietOpts(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			for i := uint64(1); i <= 5; i++ {
				if err := l.Save(nil, []*raftpb.Entry{{Index: new(i), Term: new(uint64(1)), Data: []byte("entry data")}}, true); err != nil {
					t.Fatal(err)
				}
			}
			l.Close()
			segs := segFiles(t, dir)
			last := segs[len(segs)-1]
			b, _ := os.ReadFile(last)
			os.WriteFile(last, tc.damage(b), 0o600)
			l, err = Open(dir, quietOpts(1<<20))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			r := l.Repaired()
			if r.Dropped == 0 || r.Corrupt != tc.corrupt {
				t.Errorf("Repaired() = %+v, want corrupt=%v", r, tc.corrupt)
			}
		})
	}
}
