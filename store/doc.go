// Package store is raftlite's replicated state machine: it runs one etcd raft node, persists its log,
// applies committed requests to the SQLite database, serves reads at each consistency level, and forms,
// grows, shrinks and heals the cluster (join, bootstrap, remove, snapshots, log compaction).
//
// Goroutines: the raft loop owns the raft.RawNode and handles every Ready (persist, send, hand committed
// entries on); the apply loop applies them to the database in batches and wakes waiting callers; a
// compaction ticker asks the apply loop to snapshot. Nothing else touches the RawNode.
package store
