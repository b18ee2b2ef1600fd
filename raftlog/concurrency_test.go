package raftlog

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// TestConcurrentUse runs Save on one goroutine (the Ready loop), Storage reads on another (raft) and
// CreateSnapshot/Compact on a third (the applier), as a node does. Run with -race.
func TestConcurrentUse(t *testing.T) {
	l := mustOpen(t, t.TempDir(), quietOpts(4<<10))
	defer l.Close()
	const total = 3000
	var committed atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})

	wg.Go(func() { // Ready loop
		defer close(stop)
		for i := uint64(1); i <= total; i += 10 {
			es := ents(i, i+9, 1)
			if err := l.Save(hardSt(1, 1, i+9), es, i%30 == 1); err != nil {
				t.Error(err)
				return
			}
			committed.Store(i + 9)
		}
	})
	wg.Go(func() { // raft reading its log
		for {
			select {
			case <-stop:
				return
			default:
			}
			first, _ := l.FirstIndex()
			last, _ := l.LastIndex()
			if last < first {
				continue
			}
			es, err := l.Entries(first, last+1, 4096)
			if errors.Is(err, raft.ErrCompacted) {
				continue // compacted between FirstIndex and Entries
			}
			if err != nil {
				t.Error(err)
				return
			}
			for _, e := range es {
				if want := ent(e.GetIndex(), 1, []byte{byte(e.GetIndex()), 1, 'x'}); !proto.Equal(e, want) {
					t.Errorf("entry %d = %v", e.GetIndex(), e)
					return
				}
			}
			if _, err := l.Term(last); err != nil && !errors.Is(err, raft.ErrCompacted) {
				t.Error(err)
				return
			}
			l.Stats()
			l.Snapshot()
			l.InitialState()
		}
	})
	wg.Go(func() { // applier: snapshot and compact behind the commit index
		for {
			select {
			case <-stop:
				return
			default:
			}
			c := committed.Load()
			if c < 100 {
				continue
			}
			if err := l.CreateSnapshot(c-50, &raftpb.ConfState{Voters: []uint64{1}}); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
				t.Error(err)
				return
			}
			s, _ := l.Snapshot()
			if err := l.Compact(s.GetMetadata().GetIndex() - 20); err != nil && !errors.Is(err, raft.ErrCompacted) {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if last, _ := l.LastIndex(); last != total {
		t.Fatalf("LastIndex = %d", last)
	}
	if _, err := l.Entries(total, total+1, math.MaxUint64); err != nil {
		t.Fatal(err)
	}
}
