package store

import (
	"context"

	"github.com/raftlite/raftlite/db"
)

// Counters are the store's share of rqlite's /debug/vars counters that mean something here.
type Counters struct {
	Snapshots          uint64 // snapshots taken (log compactions): store.num_snapshots
	Restores           uint64 // snapshots installed from a leader: store.num_restores
	JoinRequests       uint64 // join requests served: cluster.num_join_req
	IgnoredJoins       uint64 // joins that changed nothing: store.num_ignored_joins
	RemovedBeforeJoins uint64 // old identities removed to admit a node under a new one: store.num_removed_before_joins
	Reaped             uint64 // members reaped (-raft-reap-node-timeout)
}

// Counters reads the counters.
func (s *Store) Counters() Counters {
	var c Counters
	c.Snapshots, c.Restores = s.fsm.Counts()
	c.JoinRequests, c.IgnoredJoins, c.RemovedBeforeJoins, c.Reaped = s.cluster.Counts()
	return c
}

// SQLiteInfo is SQLite's version, options and settings on this node (/status store.sqlite3).
func (s *Store) SQLiteInfo(ctx context.Context) db.Info { return s.db.Info(ctx) }
