package cluster

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/command"
)

// An operator follows the cluster in the log: one INFO line per change of leader and per change of
// membership, naming nodes by their node-ids (the -node-id values). Raft IDs, where a line needs one, are
// in hexadecimal, as raft's own lines have them.

// LeaderChanged (the raft node's hook, on its loop) logs this node's new view of the leader. A node that
// is joining hears from the leader before it knows the members' names: the line then waits until the
// membership names the leader (reportLeader, after each conf change), so that it shows a node-id.
func (cl *Cluster) LeaderChanged(lead, term uint64) {
	cl.leaderLog.mu.Lock()
	defer cl.leaderLog.mu.Unlock()
	if lead == raft.None {
		if cl.leaderLog.known != raft.None {
			cl.log.Info("leader lost: an election is under way", "previous", cl.Name(cl.leaderLog.known), "term", term)
		}
		return
	}
	cl.leaderLog.pending, cl.leaderLog.term = lead, term
	cl.reportLeaderLocked()
}

// leaderLog is what LeaderChanged keeps between calls. The raft loop reports leaders; a snapshot's
// membership, installed by the state machine, may name one.
type leaderLog struct {
	mu      sync.Mutex
	known   uint64 // the last leader reported
	pending uint64 // a leader not reported yet: the membership does not name it yet
	term    uint64
}

// reportLeader logs the pending leader once the membership names it.
func (cl *Cluster) reportLeader() {
	cl.leaderLog.mu.Lock()
	defer cl.leaderLog.mu.Unlock()
	cl.reportLeaderLocked()
}

func (cl *Cluster) reportLeaderLocked() {
	l := &cl.leaderLog
	if l.pending == raft.None {
		return
	}
	if _, ok := cl.members.Get(l.pending); !ok {
		return
	}
	previous := "none"
	if l.known != raft.None {
		previous = cl.Name(l.known)
	}
	cl.log.Info("leader changed", "leader", cl.Name(l.pending), "previous", previous, "term", l.term)
	l.known, l.pending = l.pending, raft.None
}

// logConfChange logs a committed membership change: what changed, and the configuration after it.
// History is not news: a change this node applies again after a restart, or one made before it was a
// member (a joining node catching up), goes to DEBUG; so does leaving a joint configuration, the second
// half of a change already reported.
func (cl *Cluster) logConfChange(index uint64, what string, history bool, cs *raftpb.ConfState) {
	level := slog.LevelInfo
	if history || what == "" {
		level = slog.LevelDebug
	}
	if what == "" {
		what = "joint configuration left"
	}
	cl.log.Log(context.Background(), level, "membership changed", "change", what, "index", index,
		"voters", cl.members.NodeIDs(cs.GetVoters()), "learners", cl.members.NodeIDs(cs.GetLearners()))
}

// describeConfChange says in words what changes do to the configuration before (cs, with the members'
// entries in m); added holds the entries the change brings.
func describeConfChange(m *Membership, cs *raftpb.ConfState, changes []*raftpb.ConfChangeSingle, added []*command.Member) string {
	name := func(id uint64) string {
		for _, a := range added {
			if a.GetRaftId() == id {
				return a.GetNodeId()
			}
		}
		return m.NodeIDs([]uint64{id})[0]
	}
	readReplica := func(id uint64) bool {
		for _, a := range added {
			if a.GetRaftId() == id {
				return !a.GetVoter()
			}
		}
		return false
	}
	var parts []string
	for _, c := range changes {
		id := c.GetNodeId()
		was := "absent"
		switch {
		case IsVoter(cs, id):
			was = "voter"
		case IsLearner(cs, id):
			was = "learner"
		}
		n := name(id)
		switch c.GetType() {
		case raftpb.ConfChangeAddNode:
			switch was {
			case "voter":
				parts = append(parts, n+"'s entry updated")
			case "learner":
				parts = append(parts, n+" promoted to voter")
			default:
				parts = append(parts, n+" added as a voter")
			}
		case raftpb.ConfChangeAddLearnerNode:
			switch {
			case was == "voter":
				parts = append(parts, n+" demoted to non-voter")
			case was == "learner":
				parts = append(parts, n+"'s entry updated")
			case readReplica(id):
				parts = append(parts, n+" added as a read replica (non-voter)")
			default:
				parts = append(parts, n+" added as a learner (a voter once caught up)")
			}
		case raftpb.ConfChangeRemoveNode:
			parts = append(parts, n+" removed")
		case raftpb.ConfChangeUpdateNode:
			parts = append(parts, n+"'s entry updated")
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}
