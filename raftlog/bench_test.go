package raftlog

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// benchSave measures Save with n entries of 100 bytes plus a HardState per call, fsynced: the Ready loop's
// per-batch cost. Entry construction is the caller's and is excluded from neither time nor allocs.
func benchSave(b *testing.B, n int) {
	l := mustOpen(b, b.TempDir(), quietOpts(0))
	defer l.Close()
	data := make([]byte, 100)
	batch := make([]*raftpb.Entry, n)
	hs := &raftpb.HardState{Term: new(uint64(1)), Vote: new(uint64(1)), Commit: new(uint64(0))}
	next := uint64(1)
	b.SetBytes(int64(n * 100))
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i] = &raftpb.Entry{Term: new(uint64(1)), Index: new(next), Data: data}
			next++
		}
		*hs.Commit = next - 1
		if err := l.Save(hs, batch, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveSync(b *testing.B)  { benchSave(b, 1) }
func BenchmarkSaveBatch(b *testing.B) { benchSave(b, 64) }

// BenchmarkEntries reads 64-entry windows under a 1 MiB limit (raft's usual MaxSizePerMsg), as raft does
// when sending MsgApp to a follower.
func BenchmarkEntries(b *testing.B) {
	l := mustOpen(b, b.TempDir(), quietOpts(0))
	defer l.Close()
	const total = 10000
	for i := uint64(1); i <= total; i += 100 {
		if err := l.Save(nil, ents(i, i+99, 1), false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	lo := uint64(1)
	for b.Loop() {
		es, err := l.Entries(lo, lo+64, 1<<20)
		if err != nil || len(es) != 64 {
			b.Fatal(len(es), err)
		}
		lo = lo%(total-100) + 1
	}
}

// TestSaveDoesNotAllocate checks the hot path's allocation budget: encoding reuses the log's buffer and
// the entries are kept by reference, so only the occasional growth of the in-memory slice allocates.
func TestSaveDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	l := mustOpen(t, t.TempDir(), quietOpts(0))
	defer l.Close()
	const runs = 2000
	batches := make([][]*raftpb.Entry, runs+1)
	for i := range batches {
		batches[i] = ents(uint64(i*4+1), uint64(i*4+4), 1)
	}
	hs := hardSt(1, 1, 0)
	n := 0
	allocs := testing.AllocsPerRun(runs, func() {
		if err := l.Save(hs, batches[n], false); err != nil {
			t.Fatal(err)
		}
		n++
	})
	if allocs > 0.1 {
		t.Fatalf("Save allocates %.2f times per call", allocs)
	}
}
