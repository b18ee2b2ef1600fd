package cluster

import (
	"testing"

	"github.com/raftlite/raftlite/command"
)

func TestClusterIDForDependsOnlyOnTheMembers(t *testing.T) {
	a := []*command.Member{{RaftId: 3, NodeId: "x"}, {RaftId: 1, NodeId: "y"}, {RaftId: 2}}
	b := []*command.Member{{RaftId: 1}, {RaftId: 2}, {RaftId: 3, NodeId: "other"}}
	if clusterIDFor(a) != clusterIDFor(b) {
		t.Error("the same Raft IDs in another order or with other details gave another cluster ID")
	}
	if clusterIDFor(a) == clusterIDFor(b[:2]) {
		t.Error("different members gave the same cluster ID")
	}
	if clusterIDFor(a) == 0 {
		t.Error("cluster ID 0 means no cluster")
	}
}
