package cluster

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/command"
)

// A read-replica join permission may add or update a learner, but not touch a voter's entry.
func TestJoinPermsProtectVoters(t *testing.T) {
	s := &Cluster{members: NewMembership()}
	voter := &command.Member{RaftId: 1, NodeId: "n1", RaftAddr: "a:1", Voter: true}
	learner := &command.Member{RaftId: 2, NodeId: "r1", RaftAddr: "a:2"}
	cs := &raftpb.ConfState{Voters: []uint64{1}, Learners: []uint64{2}}
	s.members.apply([]*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(1))},
		{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(uint64(2))}}, []*command.Member{voter, learner}, cs)
	s.members.SetConf(cs)
	for _, tc := range []struct {
		m          *command.Member
		readerMayJ bool
	}{
		{&command.Member{RaftId: 3, NodeId: "r2", RaftAddr: "a:3"}, true},               // a new read replica
		{&command.Member{RaftId: 2, NodeId: "r1", RaftAddr: "a:9"}, true},               // a read replica moves
		{&command.Member{RaftId: 1, NodeId: "n1", RaftAddr: "a:1"}, false},              // demote the voter
		{&command.Member{RaftId: 7, NodeId: "n1", RaftAddr: "a:7"}, false},              // take the voter's node-id
		{&command.Member{RaftId: 8, NodeId: "x", RaftAddr: "a:1"}, false},               // take its address
		{&command.Member{RaftId: 9, NodeId: "v2", RaftAddr: "a:5", Voter: true}, false}, // join as a voter
	} {
		perms := s.joinPerms(tc.m)
		readerMay := len(perms) > 1
		if readerMay != tc.readerMayJ {
			t.Errorf("%v: a join-read-only caller allowed = %v, want %v", tc.m, readerMay, tc.readerMayJ)
		}
	}
}
