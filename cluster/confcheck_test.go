package cluster

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
	// A simple change while the configuration is joint would panic raft as well.
	add := func(ids ...uint64) *raftpb.ConfChangeV2 {
		cc := &raftpb.ConfChangeV2{}
		for _, id := range ids {
			cc.Changes = append(cc.Changes, change(raftpb.ConfChangeAddNode, id))
		}
		return cc
	}
	if err := checkConfChange(rn, add(3, 4)); err != nil {
		t.Fatalf("adding two voters in one joint change is valid: %v", err)
	}
	rn.ApplyConfChange(add(3, 4))
	if err := checkConfChange(rn, add(5)); err == nil {
		t.Fatal("a simple change in a joint configuration was judged valid")
	}
	if err := checkConfChange(rn, &raftpb.ConfChangeV2{}); err != nil {
		t.Fatalf("leaving the joint configuration is valid: %v", err)
	}
}

// replayConf follows the log's conf changes as raft applies them: into and out of a joint
// configuration, skipping the changes raft would refuse.
func TestReplayConfFollowsRaft(t *testing.T) {
	entry := func(i uint64, cc *raftpb.ConfChangeV2) *raftpb.Entry {
		b, _ := proto.Marshal(cc)
		return &raftpb.Entry{Type: raftpb.EntryConfChangeV2.Enum(), Index: new(i), Term: new(uint64(1)), Data: b}
	}
	joint := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{change(raftpb.ConfChangeAddNode, 4), change(raftpb.ConfChangeAddNode, 5)}}
	simple := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{change(raftpb.ConfChangeRemoveNode, 1)}}
	start := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	cs, err := replayConf(start, []*raftpb.Entry{entry(1, joint), entry(2, simple)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.GetVotersOutgoing()) != 3 || len(cs.GetVoters()) != 5 {
		t.Fatalf("after a joint change and a refused simple one: %v, want joint {1..5} & {1,2,3}", cs)
	}
	cs, err = replayConf(start, []*raftpb.Entry{entry(1, joint), entry(2, &raftpb.ConfChangeV2{}), entry(3, simple)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.GetVotersOutgoing()) != 0 || len(cs.GetVoters()) != 4 {
		t.Fatalf("after joining, leaving and removing 1: %v, want voters {2,3,4,5}", cs)
	}
}
