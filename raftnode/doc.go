// Package raftnode runs one etcd raft node: the RawNode and its Ready loop, the durable log (package
// raftlog), the hand-off of messages to and from the transport, proposals and the callers waiting for
// them, ReadIndex rounds, and the receipt of snapshots. It knows nothing of SQL: committed entries go out
// on a channel, in log order, to the state machine (package fsm), which applies them and reports back what
// it applied and the result of each proposal.
//
// Goroutines: Run's loop owns the raft.RawNode; everything else reaches it through channels (propose,
// step, read, OnRaft). Hooks given in Config run on that loop.
package raftnode
