package raftnode

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// confTracker knows, on the raft loop, whether raft would take a conf change now. raft ignores a conf
// change proposed before the entries up to the last one it took (or, after an election, up to the last
// index of the log) are handed to the state machine, and turns it into an empty entry: a hook that proposes
// changes of its own (promotions) asks first.
type confTracker struct {
	pending uint64 // the index of the last conf change raft may still have pending
	handed  uint64 // the last committed index handed to the state machine
}

// noteReady records, from one Ready, the conf changes appended and the entries handed on.
func (c *confTracker) noteReady(rd *raft.Ready, becameLeader bool, lastIndex uint64) {
	for _, e := range rd.Entries {
		if e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2 {
			c.pending = max(c.pending, e.GetIndex())
		}
	}
	if becameLeader {
		c.pending = max(c.pending, lastIndex)
	}
	if k := len(rd.CommittedEntries); k > 0 {
		c.handed = rd.CommittedEntries[k-1].GetIndex()
	}
}

// proposed records a conf change proposed now, which raft appends at index at (or later).
func (c *confTracker) proposed(at uint64) { c.pending = max(c.pending, at) }

func (c *confTracker) ready() bool { return c.handed >= c.pending }
