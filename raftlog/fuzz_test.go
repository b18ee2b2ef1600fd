package raftlog

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// fuzzTemplate is a small multi-segment log whose files every fuzz iteration starts from.
type fuzzTemplate struct {
	files   map[string][]byte
	lastSeq uint64
	written map[uint64]*raftpb.Entry
	m       *model
	header  []byte // a valid header for a next segment
}

func buildFuzzTemplate(f *testing.F) *fuzzTemplate {
	dir := f.TempDir()
	l := mustOpen(f, dir, quietOpts(512))
	ft := &fuzzTemplate{files: map[string][]byte{}, written: map[uint64]*raftpb.Entry{}, m: newModel()}
	for i := uint64(1); i <= 40; i += 5 {
		es := ents(i, i+4, 1)
		mustSave(f, l, hardSt(1, 1, i+4), es, false)
		ft.m.save(hardSt(1, 1, i+4), es)
		for _, e := range es {
			ft.written[e.GetIndex()] = e
		}
	}
	if err := l.CreateSnapshot(20, confState(1, 2, 3)); err != nil {
		f.Fatal(err)
	}
	ft.m.createSnapshot(20, confState(1, 2, 3))
	ft.lastSeq = l.active().seq
	h := segHeader{prevIndex: 40, prevTerm: 1, hs: ft.m.hs, snap: snapMeta{index: 20, term: 1, cs: confState(1, 2, 3)}}
	ft.header, _ = appendHeaderRecord(nil, h)
	l.Close()
	for _, p := range segFiles(f, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		ft.files[filepath.Base(p)] = b
	}
	return ft
}

// framed turns fuzz bytes into CRC-valid records: [type][len][payload...] repeated, so the fuzzer can
// reach the code behind the CRC check (header/entry decoding and replay rules).
func framed(data []byte) []byte {
	var out []byte
	for len(data) >= 2 {
		typ, n := data[0], min(int(data[1]), len(data)-2)
		var start int
		out, start = beginRecord(out, typ)
		out = append(out, data[2:2+n]...)
		out, _ = finishRecord(out, start)
		data = data[2+n:]
	}
	return out
}

// FuzzOpen writes fuzzer bytes as the last segment (raw, after a valid header, or as CRC-valid records
// after a valid header) and checks that Open never panics, that garbage never yields an entry Save did
// not write, and that whatever Open accepts is a consistent, appendable log.
func FuzzOpen(f *testing.F) {
	old := fsync
	fsync = func(*os.File) error { return nil } // parsing, not power loss, is under test
	f.Cleanup(func() { fsync = old })
	ft := buildFuzzTemplate(f)
	entryRec, _ := appendProtoRecord(nil, recEntry, ent(41, 1, []byte("x")))
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), ft.header[:10])
	f.Add(uint8(1), []byte{0, 0, 0, 0})
	f.Add(uint8(1), []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 1})
	f.Add(uint8(1), entryRec[:len(entryRec)-1])
	eb, _ := proto.Marshal(ent(41, 2, []byte("y")))
	f.Add(uint8(2), append([]byte{recEntry, byte(len(eb))}, eb...))
	hb, _ := proto.Marshal(hardSt(3, 1, 41))
	f.Add(uint8(2), append([]byte{recHardState, byte(len(hb))}, hb...))
	f.Add(uint8(2), []byte{recSegmentHeader, 2, 8, 5})
	f.Add(uint8(2), []byte{recSnapshot, 4, 16, 30, 24, 1})
	f.Add(uint8(3), []byte{recSegmentHeader, 11, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}) // prevIndex MaxUint64
	f.Add(uint8(3), []byte{recSegmentHeader, 4, 8, 40, 16, 1, recEntry, 4, 24, 41, 16, 1})

	// One scratch directory, emptied per input: f.Fuzz calls run one at a time in each worker process,
	// and a fresh t.TempDir per input would halve the exec rate.
	dir := filepath.Join(f.TempDir(), "log")
	f.Fuzz(func(t *testing.T, mode uint8, data []byte) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, b := range ft.files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// mode%4: 0 raw bytes, 1 valid header + raw bytes, 2 valid header + CRC-valid records,
		// 3 CRC-valid records only (the fuzzer writes the header too).
		garbage := mode%4 < 2
		var seg []byte
		if mode%4 == 1 || mode%4 == 2 {
			seg = append(seg, ft.header...)
		}
		if garbage {
			seg = append(seg, data...)
		} else {
			seg = append(seg, framed(data)...)
		}
		if err := os.WriteFile(filepath.Join(dir, segmentName(ft.lastSeq+1, 41)), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir, quietOpts(512))
		if err != nil {
			if garbage {
				t.Fatalf("Open failed on garbage: %v", err)
			}
			return
		}
		defer l.Close()
		first, _ := l.FirstIndex()
		last, _ := l.LastIndex()
		if first > last+1 {
			t.Fatalf("FirstIndex %d > LastIndex+1 %d", first, last+1)
		}
		for i := first - 1; ; i++ { // written so that last == MaxUint64 cannot loop forever
			if _, err := l.Term(i); err != nil {
				t.Fatalf("Term(%d) in [%d, %d]: %v", i, first-1, last, err)
			}
			if i == last {
				break
			}
		}
		var es []*raftpb.Entry
		if last >= first {
			if es, err = l.Entries(first, last+1, math.MaxUint64); err != nil || uint64(len(es)) != last-first+1 {
				t.Fatalf("Entries(%d, %d): %d entries, %v", first, last+1, len(es), err)
			}
		}
		hs, _, _ := l.InitialState()
		snap, _ := l.Snapshot()
		if hs.GetCommit() > last || hs.GetCommit() < snap.GetMetadata().GetIndex() || snap.GetMetadata().GetIndex() > last {
			t.Fatalf("inconsistent: commit %d, snapshot %d, last %d", hs.GetCommit(), snap.GetMetadata().GetIndex(), last)
		}
		if garbage {
			if last != ft.m.last() {
				t.Fatalf("garbage changed LastIndex to %d", last)
			}
			for _, e := range es {
				if !proto.Equal(e, ft.written[e.GetIndex()]) {
					t.Fatalf("entry %d = %v was never written by Save", e.GetIndex(), e)
				}
			}
			checkLog(t, l, ft.m, false, ft.written)
		}
		// Whatever was accepted must be appendable and survive a reopen.
		lt, _ := l.Term(last)
		if err := l.Save(hardSt(max(lt, hs.GetTerm()), 0, hs.GetCommit()), []*raftpb.Entry{ent(last+1, max(lt, hs.GetTerm()), nil)}, true); err != nil {
			t.Fatalf("Save after Open: %v", err)
		}
		l.Close()
		l2, err := Open(dir, quietOpts(512))
		if err != nil {
			t.Fatalf("reopen after Save: %v", err)
		}
		defer l2.Close()
		if l2last, _ := l2.LastIndex(); l2last != last+1 {
			t.Fatalf("reopen: LastIndex %d, want %d", l2last, last+1)
		}
	})
}
