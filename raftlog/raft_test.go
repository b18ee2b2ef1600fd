package raftlog

import (
	"fmt"
	"io"
	"log"
	"math"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// TestRaftNodeOnLog drives a real single-voter raft.RawNode with the Log as its Storage, restarts it
// from the log after snapshot+compaction, and keeps going.
func TestRaftNodeOnLog(t *testing.T) {
	raft.SetLogger(&raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)})
	t.Cleanup(raft.ResetDefaultLogger)
	dir := t.TempDir()
	l := mustOpen(t, dir, quietOpts(2<<10))
	if err := l.ApplySnapshot(snapshot(0, 0, confState(1))); err != nil { // v3.7 bootstrap: ConfState only
		t.Fatal(err)
	}
	var applied uint64
	var got []string
	start := func(applied uint64) *raft.RawNode {
		rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: l,
			Applied: applied, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, CheckQuorum: true, PreVote: true})
		if err != nil {
			t.Fatal(err)
		}
		return rn
	}
	process := func(rn *raft.RawNode) {
		for rn.HasReady() {
			rd := rn.Ready()
			if !raft.IsEmptySnap(rd.Snapshot) {
				t.Fatal("unexpected snapshot in single-node Ready")
			}
			if err := l.Save(rd.HardState, rd.Entries, rd.MustSync); err != nil {
				t.Fatal(err)
			}
			for _, e := range rd.CommittedEntries {
				if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
					got = append(got, string(e.GetData()))
				}
				applied = e.GetIndex()
			}
			rn.Advance(rd)
		}
	}
	propose := func(rn *raft.RawNode, from, to int) {
		for i := from; i < to; i++ {
			if err := rn.Propose(fmt.Appendf(nil, "cmd-%d", i)); err != nil {
				t.Fatal(err)
			}
			process(rn)
		}
	}
	rn := start(0)
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	process(rn)
	if rn.Status().RaftState != raft.StateLeader {
		t.Fatalf("state %v", rn.Status().RaftState)
	}
	propose(rn, 0, 200)
	if len(got) != 200 {
		t.Fatalf("applied %d commands", len(got))
	}
	if err := l.CreateSnapshot(applied-10, confState(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Compact(applied - 30); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, dir, quietOpts(2<<10))
	defer l.Close()
	hs, _, _ := l.InitialState()
	if hs.GetCommit() != applied {
		t.Fatalf("commit after restart %d, applied %d", hs.GetCommit(), applied)
	}
	rn = start(applied)
	for i := 0; i < 30 && rn.Status().RaftState != raft.StateLeader; i++ {
		rn.Tick()
		process(rn)
	}
	if rn.Status().RaftState != raft.StateLeader {
		t.Fatal("restarted node did not become leader")
	}
	propose(rn, 200, 300)
	if len(got) != 300 {
		t.Fatalf("applied %d commands in total", len(got))
	}
	for i, s := range got {
		if s != fmt.Sprintf("cmd-%d", i) {
			t.Fatalf("command %d = %q", i, s)
		}
	}
	first, _ := l.FirstIndex()
	last, _ := l.LastIndex()
	es, err := l.Entries(first, last+1, math.MaxUint64)
	if err != nil || uint64(len(es)) != last-first+1 {
		t.Fatalf("Entries: %d, %v", len(es), err)
	}
}
