package cluster

import (
	"fmt"
	"slices"

	"github.com/raftlite/raftlite/command"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Encoding a peers.json decision's conf changes as log entries, and small helpers of the recovery.

// changeEntries encodes planned changes as the log entries after index from, in term.
func changeEntries(changes []plannedChange, from, term uint64) ([]*raftpb.Entry, error) {
	ents := make([]*raftpb.Entry, 0, len(changes))
	for k, c := range changes {
		cc := &raftpb.ConfChangeV2{}
		if !c.Leave {
			typ := map[string]raftpb.ConfChangeType{"voter": raftpb.ConfChangeAddNode, "learner": raftpb.ConfChangeAddLearnerNode,
				"remove": raftpb.ConfChangeRemoveNode}[c.Type]
			var err error
			if cc, err = confChange([]*raftpb.ConfChangeSingle{change(typ, c.RaftID)}, memberList(c.Member)...); err != nil {
				return nil, err
			}
		}
		data, err := proto.Marshal(cc)
		if err != nil {
			return nil, err
		}
		ents = append(ents, &raftpb.Entry{Type: raftpb.EntryConfChangeV2.Enum(), Term: new(term), Index: new(from + uint64(k) + 1), Data: data})
	}
	return ents, nil
}

func memberList(m *command.Member) []*command.Member {
	if m == nil {
		return nil
	}
	return []*command.Member{m}
}

func cmpName(m *command.Member, id uint64) string {
	if m != nil && m.GetNodeId() != "" {
		return m.GetNodeId()
	}
	return fmt.Sprintf("%x", id)
}

func setOf(ids []uint64) map[uint64]bool {
	out := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// sortedKeys lists the keys of the maps given, each once, in order.
func sortedKeys[V any](sets ...map[uint64]V) []uint64 {
	var out []uint64
	for _, set := range sets {
		for id := range set {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}
