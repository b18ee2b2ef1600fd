package cluster

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
)

// Membership is the cluster as this node knows it: who the members are (from the contexts of applied
// conf changes, or from the database after a snapshot) and which of them vote (from raft's ConfState).
type Membership struct {
	mu      sync.RWMutex
	members map[uint64]*command.Member
	conf    *raftpb.ConfState
	// awaiting: some member asked to vote and is a learner still (recounted whenever either side changes).
	awaiting atomic.Bool
}

func NewMembership() *Membership {
	return &Membership{members: map[uint64]*command.Member{}, conf: &raftpb.ConfState{}}
}

// load replaces the members with an encoded command.membership (as stored in the database).
func (m *Membership) Load(encoded []byte) error {
	var ms command.Membership
	if err := proto.Unmarshal(encoded, &ms); err != nil {
		return fmt.Errorf("decode membership: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.members = map[uint64]*command.Member{}
	for _, mem := range ms.GetMembers() {
		m.members[mem.GetRaftId()] = mem
	}
	m.recount()
	return nil
}

// recount refreshes awaiting; the caller holds mu for writing.
func (m *Membership) recount() {
	awaiting := false
	for id, mem := range m.members {
		if mem.GetVoter() && !IsVoter(m.conf, id) {
			awaiting = true
		}
	}
	m.awaiting.Store(awaiting)
}

// awaitingVote reports whether a member that asked to vote is not a voter yet.
func (m *Membership) awaitingVote() bool { return m.awaiting.Load() }

// encode returns the members in the deterministic form stored in the database.
func (m *Membership) Encode() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return encodeMembers(m.members)
}

func encodeMembers(members map[uint64]*command.Member) []byte {
	ids := make([]uint64, 0, len(members))
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var ms command.Membership
	for _, id := range ids {
		ms.Members = append(ms.Members, members[id])
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&ms)
	if err != nil {
		panic(fmt.Sprintf("encode membership: %v", err)) // cannot happen for a well-formed message
	}
	return b
}

// apply records a conf change that raft has applied: cs is the ConfState raft returned.
func (m *Membership) apply(changes []*raftpb.ConfChangeSingle, added []*command.Member, cs *raftpb.ConfState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	byID := map[uint64]*command.Member{}
	for _, mem := range added {
		byID[mem.GetRaftId()] = mem
	}
	for _, c := range changes {
		id := c.GetNodeId()
		switch c.GetType() {
		case raftpb.ConfChangeRemoveNode:
			delete(m.members, id)
		default:
			if mem, ok := byID[id]; ok {
				m.members[id] = mem
			}
		}
	}
	m.conf = cs
	m.recount()
}

func (m *Membership) SetConf(cs *raftpb.ConfState) {
	m.mu.Lock()
	m.conf = cs
	m.recount()
	m.mu.Unlock()
}

func (m *Membership) ConfState() *raftpb.ConfState {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.conf
}

func (m *Membership) Get(id uint64) (*command.Member, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mem, ok := m.members[id]
	return mem, ok
}

func (m *Membership) ByNodeID(nodeID string) (*command.Member, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, mem := range m.members {
		if mem.GetNodeId() == nodeID {
			return mem, true
		}
	}
	return nil, false
}

func (m *Membership) byRaftAddr(addr string) (*command.Member, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, mem := range m.members {
		if mem.GetRaftAddr() == addr {
			return mem, true
		}
	}
	return nil, false
}

// Member is one node of the cluster as the API reports it.
type Member struct {
	NodeID    string
	RaftID    uint64
	RaftAddr  string
	HTTPAddr  string
	Voter     bool // votes now (a learner waiting for promotion does not)
	WantsVote bool // joined as a voter
}

// list returns every member, voters and learners, sorted by node-id.
func (m *Membership) List() []Member {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]Member, 0, len(m.members))
	for id, mem := range m.members {
		out = append(out, Member{
			NodeID: mem.GetNodeId(), RaftID: id, RaftAddr: mem.GetRaftAddr(), HTTPAddr: mem.GetHttpAddr(),
			Voter: IsVoter(m.conf, id), WantsVote: mem.GetVoter(),
		})
	}
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.NodeID < b.NodeID:
			return -1
		case a.NodeID > b.NodeID:
			return 1
		}
		return 0
	})
	return out
}

// nodeIDs names the members with the given Raft IDs by their node-ids (Raft IDs in hex for unknown ones).
func (m *Membership) NodeIDs(ids []uint64) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if mem, ok := m.members[id]; ok {
			out = append(out, mem.GetNodeId())
		} else {
			out = append(out, fmt.Sprintf("%x", id))
		}
	}
	slices.Sort(out)
	return out
}

// IsVoter reports whether id votes in cs (in either half of a joint configuration).
func IsVoter(cs *raftpb.ConfState, id uint64) bool {
	return slices.Contains(cs.GetVoters(), id) || slices.Contains(cs.GetVotersOutgoing(), id)
}

// IsLearner reports whether id is a learner in cs (now, or once a joint configuration is left).
func IsLearner(cs *raftpb.ConfState, id uint64) bool {
	return slices.Contains(cs.GetLearners(), id) || slices.Contains(cs.GetLearnersNext(), id)
}

// decodeConfChange reads a committed conf change entry: the change, and the members it adds or updates
// (from its context: one Member for the V1 changes written by Bootstrap, a Membership for ours).
func decodeConfChange(e *raftpb.Entry) (raftpb.ConfChangeI, []*raftpb.ConfChangeSingle, []*command.Member, error) {
	switch e.GetType() {
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return nil, nil, nil, fmt.Errorf("decode conf change at index %d: %w", e.GetIndex(), err)
		}
		var added []*command.Member
		if len(cc.GetContext()) > 0 {
			var mem command.Member
			if err := proto.Unmarshal(cc.GetContext(), &mem); err == nil {
				added = append(added, &mem)
			}
		}
		return &cc, cc.AsV2().GetChanges(), added, nil
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return nil, nil, nil, fmt.Errorf("decode conf change at index %d: %w", e.GetIndex(), err)
		}
		var ms command.Membership
		if len(cc.GetContext()) > 0 {
			if err := proto.Unmarshal(cc.GetContext(), &ms); err != nil {
				return nil, nil, nil, fmt.Errorf("decode conf change context at index %d: %w", e.GetIndex(), err)
			}
		}
		return &cc, cc.GetChanges(), ms.GetMembers(), nil
	}
	return nil, nil, nil, fmt.Errorf("entry %d is not a conf change", e.GetIndex())
}

// confChange builds a simple (non-joint) ConfChangeV2 whose context carries the added or updated members.
func confChange(changes []*raftpb.ConfChangeSingle, members ...*command.Member) (*raftpb.ConfChangeV2, error) {
	ctx, err := proto.Marshal(&command.Membership{Members: members})
	if err != nil {
		return nil, err
	}
	return &raftpb.ConfChangeV2{Changes: changes, Context: ctx}, nil
}

func change(t raftpb.ConfChangeType, id uint64) *raftpb.ConfChangeSingle {
	return &raftpb.ConfChangeSingle{Type: t.Enum(), NodeId: new(id)}
}

// isVoterEntry reports whether m would change the entry of a voting member: one with its Raft ID, node-id
// or Raft address that votes, or asked to.
func (m *Membership) isVoterEntry(mem *command.Member) bool {
	cs := m.ConfState()
	for _, find := range []func() (*command.Member, bool){
		func() (*command.Member, bool) { return m.Get(mem.GetRaftId()) },
		func() (*command.Member, bool) { return m.ByNodeID(mem.GetNodeId()) },
		func() (*command.Member, bool) { return m.byRaftAddr(mem.GetRaftAddr()) },
	} {
		if old, ok := find(); ok && (old.GetVoter() || IsVoter(cs, old.GetRaftId())) {
			return true
		}
	}
	return false
}
