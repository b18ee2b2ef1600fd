package raftlog

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

func TestFreshLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	l := mustOpen(t, dir, quietOpts(0))
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode: %v, %v", fi.Mode(), err)
	}
	checkLog(t, l, newModel(), true, nil)
	hs, cs, _ := l.InitialState()
	if !raft.IsEmptyHardState(hs) || cs == nil {
		t.Fatalf("InitialState on fresh log = %v, %v", hs, cs)
	}
	if files := segFiles(t, dir); len(files) != 1 || filepath.Base(files[0]) != segmentName(1, 1) {
		t.Fatalf("segment files = %v", files)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(hardSt(1, 1, 0), nil, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestSaveRules(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(0))
	m := newModel()
	save := func(hs *raftpb.HardState, es []*raftpb.Entry) {
		t.Helper()
		mustSave(t, l, hs, es, true)
		m.save(hs, es)
		checkLog(t, l, m, true, nil)
	}
	save(hardSt(1, 1, 0), ents(1, 10, 1))
	if err := l.Save(nil, ents(12, 13, 1), true); err == nil || !strings.Contains(err.Error(), "gap") {
		t.Fatalf("gap: %v", err)
	}
	bad := []*raftpb.Entry{ent(11, 1, nil), ent(13, 1, nil)}
	if err := l.Save(nil, bad, true); err == nil || !strings.Contains(err.Error(), "contiguous") {
		t.Fatalf("non-contiguous: %v", err)
	}
	save(hardSt(2, 2, 6), ents(7, 12, 2)) // conflict: 7..10 replaced
	save(&raftpb.HardState{}, nil)        // empty hard state: no change
	save(nil, nil)
	if err := l.CreateSnapshot(6, confState(1)); err != nil {
		t.Fatal(err)
	}
	m.createSnapshot(6, confState(1))
	// Entries at or below the snapshot are stale rewrites of committed entries: ignored, not a truncation.
	mustSave(t, l, nil, ents(3, 6, 9), true)
	checkLog(t, l, m, true, nil)
	save(nil, append(ents(5, 6, 9), ents(7, 8, 3)...)) // the stale part is dropped, the rest truncates at 7
	l.Close()
	l = mustOpen(t, dir, quietOpts(0))
	defer l.Close()
	checkLog(t, l, m, true, nil)
}

func TestCommitClampedOnOpen(t *testing.T) {
	dir := t.TempDir()
	var logs logBuffer
	l := mustOpen(t, dir, Options{Logger: slogTo(&logs)})
	mustSave(t, l, hardSt(1, 1, 50), ents(1, 5, 1), true) // commit past what is held: raft can't produce this
	l.Close()
	l = mustOpen(t, dir, Options{Logger: slogTo(&logs)})
	defer l.Close()
	hs, _, _ := l.InitialState()
	if hs.GetCommit() != 5 || !strings.Contains(logs.String(), "clamping") {
		t.Fatalf("commit = %d, log %q", hs.GetCommit(), logs.String())
	}
}

func TestSnapshotAndCompactErrors(t *testing.T) {
	l := mustOpen(t, t.TempDir(), quietOpts(0))
	defer l.Close()
	mustSave(t, l, hardSt(1, 1, 8), ents(1, 10, 1), true)
	if err := l.CreateSnapshot(11, nil); err == nil {
		t.Fatal("CreateSnapshot past last index succeeded")
	}
	if err := l.CreateSnapshot(0, nil); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("CreateSnapshot(0): %v", err)
	}
	if err := l.Compact(3); err == nil {
		t.Fatal("Compact beyond snapshot index succeeded")
	}
	if err := l.CreateSnapshot(5, confState(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateSnapshot(5, nil); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("CreateSnapshot at same index: %v", err)
	}
	if err := l.Compact(6); err == nil {
		t.Fatal("Compact(snapshot+1) succeeded: it would make an unapplied entry unreadable")
	}
	if err := l.Compact(5); err != nil {
		t.Fatal(err)
	}
	if err := l.Compact(5); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Compact again: %v", err)
	}
	if _, err := l.Entries(5, 6, math.MaxUint64); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries(5): %v", err)
	}
	if tm, err := l.Term(5); err != nil || tm != 1 {
		t.Fatalf("Term(FirstIndex-1) = %d, %v", tm, err)
	}
	if err := l.ApplySnapshot(snapshot(5, 1, nil)); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("ApplySnapshot at current snapshot: %v", err)
	}
}

func TestOpenRefusesSecondUser(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(0))
	defer l.Close()
	if l2, err := Open(dir, quietOpts(0)); err == nil {
		l2.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
}

func TestOpenRejectsStrangeSegmentName(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir, quietOpts(0)).Close()
	if err := os.WriteFile(filepath.Join(dir, "junk.seg"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, quietOpts(0)); err == nil || !strings.Contains(err.Error(), "junk.seg") {
		t.Fatalf("Open with junk.seg: %v", err)
	}
}

// garbageLog writes a few segments and returns the directory, the model and the last segment's path.
func garbageLog(t *testing.T) (string, *model, string) {
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(256))
	m := newModel()
	for i := uint64(0); i < 6; i++ {
		es := ents(i*10+1, i*10+10, 1)
		hs := hardSt(1, 1, i*10+5)
		mustSave(t, l, hs, es, true)
		m.save(hs, es)
	}
	crash(l)
	files := segFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("only %d segments", len(files))
	}
	return dir, m, files[len(files)-1]
}

func reopenAndCheck(t *testing.T, dir string, m *model) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	l := mustOpen(t, dir, quietOpts(1<<10))
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("Open allocated %d bytes for a tiny log", alloc)
	}
	checkLog(t, l, m, true, nil)
	e := ent(m.last()+1, 2, []byte("next"))
	mustSave(t, l, nil, []*raftpb.Entry{e}, true)
	m.save(nil, []*raftpb.Entry{e})
	l.Close()
	l = mustOpen(t, dir, quietOpts(1<<10))
	defer l.Close()
	checkLog(t, l, m, true, nil)
}

func appendToFile(t *testing.T, path string, b []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestGarbageTails(t *testing.T) {
	noFsync(t)
	t.Run("random bytes appended", func(t *testing.T) {
		for seed := range uint64(20) {
			dir, m, last := garbageLog(t)
			rng := rand.New(rand.NewPCG(seed, 1))
			b := make([]byte, 1+rng.IntN(300))
			for i := range b {
				b[i] = byte(rng.UintN(256))
			}
			appendToFile(t, last, b)
			reopenAndCheck(t, dir, m)
		}
	})
	t.Run("zeros appended", func(t *testing.T) { // what ext4 leaves after a crash mid-extend
		dir, m, last := garbageLog(t)
		appendToFile(t, last, make([]byte, 4096))
		reopenAndCheck(t, dir, m)
	})
	t.Run("huge length field", func(t *testing.T) {
		for _, n := range []uint32{math.MaxUint32, maxRecordSize + 1, maxRecordSize, 1 << 20} {
			dir, m, last := garbageLog(t)
			var frame [frameSize + 4]byte
			binary.LittleEndian.PutUint32(frame[:], n)
			appendToFile(t, last, frame[:])
			reopenAndCheck(t, dir, m)
		}
	})
	t.Run("zero-length last segment", func(t *testing.T) {
		dir, m, last := garbageLog(t)
		seq, _, _ := parseSegmentName(filepath.Base(last))
		if err := os.WriteFile(filepath.Join(dir, segmentName(seq+1, m.last()+1)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		reopenAndCheck(t, dir, m)
	})
	t.Run("partial header", func(t *testing.T) {
		dir, m, last := garbageLog(t)
		seq, _, _ := parseSegmentName(filepath.Base(last))
		hdr, _ := appendHeaderRecord(nil, segHeader{prevIndex: m.last(), prevTerm: 1, hs: m.hs})
		for n := 1; n < len(hdr); n++ {
			p := filepath.Join(dir, segmentName(seq+1, m.last()+1))
			if err := os.WriteFile(p, hdr[:n], 0o600); err != nil {
				t.Fatal(err)
			}
			l := mustOpen(t, dir, quietOpts(1<<10))
			checkLog(t, l, m, true, nil)
			l.Close()
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("torn segment %s was not removed: %v", p, err)
			}
		}
		reopenAndCheck(t, dir, m)
	})
	t.Run("only segment has a torn header", func(t *testing.T) {
		dir := t.TempDir()
		hdr, _ := appendHeaderRecord(nil, segHeader{})
		if err := os.WriteFile(filepath.Join(dir, segmentName(1, 1)), hdr[:len(hdr)-1], 0o600); err != nil {
			t.Fatal(err)
		}
		reopenAndCheck(t, dir, newModel())
	})
}

func TestCompactionDeletesWholeSegments(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(256))
	m := newModel()
	for i := uint64(0); i < 20; i++ {
		es := ents(i*10+1, i*10+10, 1)
		mustSave(t, l, hardSt(1, 1, i*10+10), es, true)
		m.save(hardSt(1, 1, i*10+10), es)
	}
	before := len(segFiles(t, dir))
	if before < 10 {
		t.Fatalf("only %d segments", before)
	}
	if err := l.CreateSnapshot(150, confState(1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	m.createSnapshot(150, confState(1, 2, 3))
	const compactIndex = 120
	if err := l.Compact(compactIndex); err != nil {
		t.Fatal(err)
	}
	m.compact(compactIndex)
	checkLog(t, l, m, true, nil)
	after := len(segFiles(t, dir))
	if after >= before || after != l.Stats().Segments {
		t.Fatalf("segments before %d, after %d, Stats %d", before, after, l.Stats().Segments)
	}
	// Exactly the segments before the last one starting at or below compactIndex are gone.
	for i, p := range segFiles(t, dir) {
		h, _, err := readHeader(&segment{path: p})
		if err != nil {
			t.Fatal(err)
		}
		if starts := h.prevIndex + 1; (i == 0) != (starts <= compactIndex) {
			t.Fatalf("kept segment %d starts at %d; compactIndex %d", i, starts, compactIndex)
		}
	}
	var st Stats
	for _, p := range segFiles(t, dir) {
		fi, _ := os.Stat(p)
		st.Bytes += fi.Size()
	}
	if got := l.Stats().Bytes; got != st.Bytes {
		t.Fatalf("Stats.Bytes = %d, files hold %d", got, st.Bytes)
	}
	l.Close()

	l = mustOpen(t, dir, quietOpts(256))
	defer l.Close()
	fi, _ := l.FirstIndex()
	if fi-1 > compactIndex-1 {
		t.Fatalf("after reopen FirstIndex()-1 = %d, want <= %d", fi-1, compactIndex-1)
	}
	got, err := l.Entries(compactIndex, 201, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	want := ents(compactIndex, 200, 1)
	compareEntries(t, got, want)
	checkLog(t, l, m, false, nil)

	// Compacting everything up to the snapshot leaves the active segment alone.
	if err := l.CreateSnapshot(200, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Compact(200); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n < 1 || n > 2 {
		t.Fatalf("%d segments after full compaction", n)
	}
}

func TestApplySnapshot(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(1<<10))
	m := newModel()
	do := func(s *raftpb.Snapshot) {
		t.Helper()
		if err := l.ApplySnapshot(s); err != nil {
			t.Fatal(err)
		}
		m.applySnapshot(s)
		checkLog(t, l, m, true, nil)
	}
	reopen := func() {
		t.Helper()
		l.Close()
		l = mustOpen(t, dir, quietOpts(1<<10))
		checkLog(t, l, m, false, nil)
	}
	// Bootstrap: index 0 carrying only a ConfState.
	do(snapshot(0, 0, confState(1, 2, 3)))
	reopen()
	mustSave(t, l, hardSt(2, 1, 3), ents(1, 30, 2), true)
	m.save(hardSt(2, 1, 3), ents(1, 30, 2))
	// A snapshot far beyond our log.
	do(snapshot(100, 5, confState(1, 2, 3, 4)))
	if hs, _, _ := l.InitialState(); hs.GetCommit() != 100 || hs.GetTerm() != 2 {
		t.Fatalf("hard state after ApplySnapshot: %v", hs)
	}
	reopen()
	mustSave(t, l, hardSt(5, 1, 101), ents(101, 110, 5), true)
	m.save(hardSt(5, 1, 101), ents(101, 110, 5))
	reopen()
	// A snapshot inside our log whose term matches: reopen may keep the agreeing prefix.
	do(snapshot(105, 5, nil))
	reopen()
	mustSave(t, l, nil, ents(106, 107, 6), true)
	m.save(nil, ents(106, 107, 6))
	reopen()
	checkLog(t, l, m, false, nil)
	// A snapshot inside our log with a different term: everything is replaced.
	do(snapshot(107, 9, confState(7)))
	reopen()
	checkLog(t, l, m, true, nil)
	if err := l.ApplySnapshot(snapshot(50, 9, nil)); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("older snapshot: %v", err)
	}
	l.Close()
}

// TestTruncationAcrossSegments rewrites the log from inside an earlier segment, which must cut a new
// segment at the rewrite point so that the old entries in the later segments cannot reappear on replay.
func TestTruncationAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(1<<10))
	m := newModel()
	for i := uint64(0); i < 10; i++ {
		es := ents(i*10+1, i*10+10, 1)
		mustSave(t, l, hardSt(1, 1, 20), es, true)
		m.save(hardSt(1, 1, 20), es)
	}
	seqBefore := l.active().seq
	if l.active().prevIndex <= 30 {
		t.Fatalf("active segment starts at %d; test needs the rewrite to reach an earlier segment", l.active().prevIndex+1)
	}
	mustSave(t, l, hardSt(2, 2, 20), ents(31, 35, 2), true)
	m.save(hardSt(2, 2, 20), ents(31, 35, 2))
	if l.active().seq != seqBefore+1 || l.active().prevIndex != 30 || l.active().prevTerm != 1 {
		t.Fatalf("after rewrite: active seq %d (was %d), prev %d/%d", l.active().seq, seqBefore, l.active().prevIndex, l.active().prevTerm)
	}
	checkLog(t, l, m, true, nil)
	l.Close()
	l = mustOpen(t, dir, quietOpts(1<<10))
	checkLog(t, l, m, true, nil)
	// Keep going, compact past the rewrite point, reopen again.
	mustSave(t, l, hardSt(2, 2, 60), ents(36, 60, 2), true)
	m.save(hardSt(2, 2, 60), ents(36, 60, 2))
	if err := l.CreateSnapshot(40, nil); err != nil {
		t.Fatal(err)
	}
	m.createSnapshot(40, nil)
	if err := l.Compact(38); err != nil {
		t.Fatal(err)
	}
	m.compact(38)
	checkLog(t, l, m, true, nil)
	l.Close()
	l = mustOpen(t, dir, quietOpts(1<<10))
	defer l.Close()
	checkLog(t, l, m, false, nil)
	if fi, _ := l.FirstIndex(); fi > 38 {
		t.Fatalf("FirstIndex after reopen = %d", fi)
	}
}

// TestFsyncFailureIsSticky: after a failed fsync the page cache may have dropped the dirty data, so the
// log refuses further writes until it is reopened (which re-reads what actually reached the file).
func TestFsyncFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(0))
	mustSave(t, l, hardSt(1, 1, 0), ents(1, 3, 1), true)
	old := fsync
	fsync = func(*os.File) error { return errors.New("EIO") }
	err := l.Save(hardSt(1, 1, 2), ents(4, 5, 1), true)
	fsync = old
	if err == nil || !strings.Contains(err.Error(), "EIO") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Save with failing fsync: %v", err)
	}
	if err2 := l.Save(nil, ents(4, 4, 1), false); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("Save after fsync failure: %v", err2)
	}
	if err := l.CreateSnapshot(1, nil); err == nil {
		t.Fatal("CreateSnapshot after fsync failure succeeded")
	}
	if last, _ := l.LastIndex(); last != 3 {
		t.Fatalf("LastIndex after failed Save = %d, want 3 (memory must not run ahead of the disk)", last)
	}
	l.Close()
	l = mustOpen(t, dir, quietOpts(0))
	defer l.Close()
	if last, _ := l.LastIndex(); last != 5 { // the write itself reached the file
		t.Fatalf("LastIndex after reopen = %d", last)
	}
}

// TestWellFormedButWrongRecordIsAnError: a record with a valid CRC that contradicts the log (a gap) can
// only come from a bug, so Open reports it instead of silently cutting the tail.
func TestWellFormedButWrongRecordIsAnError(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(0))
	mustSave(t, l, hardSt(1, 1, 0), ents(1, 3, 1), true)
	l.Close()
	rec, _ := appendProtoRecord(nil, recEntry, ent(7, 1, nil))
	appendToFile(t, segFiles(t, dir)[0], rec)
	if _, err := Open(dir, quietOpts(0)); err == nil || !strings.Contains(err.Error(), "gap") {
		t.Fatalf("Open with a gap: %v", err)
	}
}

// Stats answers from the figures of the last change: a /status request must not wait out an fsync.
func TestStatsDoNotWaitForWrites(t *testing.T) {
	l := mustOpen(t, t.TempDir(), quietOpts(0))
	defer l.Close()
	if err := l.Save(hardSt(2, 0, 10), ents(1, 10, 2), true); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock() // as a Save in its fsync does
	got := make(chan Stats, 1)
	go func() { got <- l.Stats() }()
	select {
	case st := <-got:
		if st.FirstIndex != 1 || st.LastIndex != 10 || st.Segments != 1 || st.Bytes == 0 {
			t.Errorf("Stats = %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Error("Stats waited for the log's lock")
	}
	l.mu.Unlock()
}
