package store

import (
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Two removals proposed together in a two-voter cluster both commit; applying the second must not leave
// raft without voters (which panics it, on every restart).
func TestCancelsChangeThatLeavesNoVoter(t *testing.T) {
	ms := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: ms, MaxInflightMsgs: 16, MaxSizePerMsg: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Bootstrap([]raft.Peer{{ID: 1}, {ID: 2}}); err != nil {
		t.Fatal(err)
	}
	// Apply the bootstrap configuration.
	rd := rn.Ready()
	ms.Append(rd.Entries)
	for _, e := range rd.CommittedEntries {
		var cc raftpb.ConfChange
		if e.GetType() == raftpb.EntryConfChange {
			if err := proto.Unmarshal(e.GetData(), &cc); err == nil {
				rn.ApplyConfChange(&cc)
			}
		}
	}
	rn.Advance(rd)
	remove := func(id uint64) raftpb.ConfChangeI {
		return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{change(raftpb.ConfChangeRemoveNode, id)}}
	}
	if err := checkConfChange(rn, remove(1)); err != nil {
		t.Fatalf("removing one of two voters is valid: %v", err)
	}
	rn.ApplyConfChange(remove(1))
	if err := checkConfChange(rn, remove(2)); err == nil {
		t.Fatal("removing the last voter was judged valid")
	}
	cs := rn.ApplyConfChange(cancelConfChange(remove(2))) // must not panic
	if len(cs.GetVoters()) != 1 || cs.GetVoters()[0] != 2 {
		t.Errorf("conf state after the cancelled change: %v", cs)
	}
}
