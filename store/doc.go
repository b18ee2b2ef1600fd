// Package store is one node of raftlite as the HTTP API uses it. It wires together the raft node (package
// raftnode), the state machine (package fsm), the cluster (package cluster) and a transport, and serves
// what the API asks: writes through the log, reads at each consistency level, forwarding to the leader,
// loads, boots and backups, and the node's status.
//
// Goroutines: each component owns its own (the raft loop in raftnode, the apply loop in fsm, joins and
// refreshes in cluster, the transport's streams); Close stops them all, in order, and waits for them.
package store
