package db

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/raftlite/raftlite/sqlpolicy"
)

// Why the authorizers refuse what they refuse. SQLite's own error says only "not authorized"; the
// statement's result carries one of these after it (see explainRefusal), so that a client learns the reason
// in the result's error field.
const (
	whyStateTable = stateTable + " is raftlite's own table: it records the last log entry applied to this " +
		"database, and the cluster's membership, in the same transaction as the data, so that a restarted node " +
		"neither applies an entry twice nor skips one; queries may read it, but no write may change it or " +
		"read it (what it holds mid-batch depends on how each node batched the log, so replicas would differ)"
	whyTransaction = "BEGIN, COMMIT and ROLLBACK must be statements of their own: the node runs every request " +
		"inside a transaction of its own, which also records the applied log position"
	whySavepoint = "savepoint names beginning with _raftlite_ belong to raftlite (each request's transaction " +
		"uses them): choose another name"
	whyOptimize = "PRAGMA optimize is not allowed in a write: what it analyses depends on the queries this " +
		"node has run, so the nodes' databases would differ"
	whyAttach = "ATTACH and DETACH are not allowed: raftlite replicates one database file, and an attached " +
		"file would be opened, or created, on each node's own disk outside it"
	whyChangeQueue = "_raftlite_cdc and _raftlite_cdc_state are raftlite's own tables: they queue the row " +
		"changes this node captured for change data capture, which differ from node to node; no statement may " +
		"read or change them (the CDC feed serves them)"
	whyOwnPrefix = "table names beginning with _raftlite_ belong to raftlite: choose another name"
	whyTemp      = "TEMP tables, indexes, triggers and views are not allowed: they would exist on one connection " +
		"of one node only, not on the other nodes, and not after a restart"
)

// authorize guards the writer against user statements that would break the node's own bookkeeping or
// let replicas diverge: changing the state table, ending the writer's transaction (which carries the
// applied index), releasing its savepoints, attaching files (every replica would create them), TEMP
// objects and connection settings (they live on this connection only, and a restarted replica loses
// them).
func (w *writer) authorize(op int, arg1, arg2, arg3 string) int {
	if w.internal {
		return sqlite3.SQLITE_OK
	}
	if w.foreignExtensions && w.builtin != nil && w.usedExtension == "" {
		switch op {
		case sqlite3.SQLITE_FUNCTION:
			if !w.builtin["function "+strings.ToLower(arg2)] {
				w.usedExtension = "function " + arg2
			}
		case sqlite3.SQLITE_CREATE_VTABLE:
			if !w.builtin["module "+strings.ToLower(arg2)] {
				w.usedExtension = "module " + arg2
			}
		}
	}
	return w.refused.verdict(writerRefusal(op, arg1, arg2))
}

// writerRefusal is why the writer refuses an action of a user statement, or "" if it allows it.
func writerRefusal(op int, arg1, arg2 string) string {
	switch op {
	case sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_READ:
		if strings.EqualFold(arg1, stateTable) {
			return whyStateTable
		}
	case sqlite3.SQLITE_DROP_TABLE, sqlite3.SQLITE_ALTER_TABLE:
		// DROP TABLE passes the table in arg1; ALTER TABLE passes the schema in arg1 and the table in arg2.
		if strings.EqualFold(arg1, stateTable) || strings.EqualFold(arg2, stateTable) {
			return whyStateTable
		}
	case sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_CREATE_TRIGGER:
		if strings.EqualFold(arg2, stateTable) {
			return whyStateTable
		}
	case sqlite3.SQLITE_TRANSACTION:
		return whyTransaction
	case sqlite3.SQLITE_SAVEPOINT:
		if strings.HasPrefix(strings.ToLower(arg2), "_raftlite_") {
			return whySavepoint
		}
	case sqlite3.SQLITE_PRAGMA:
		if strings.EqualFold(arg1, "optimize") {
			// Which tables it analyses depends on the queries this connection has run.
			return whyOptimize
		}
	}
	return sharedRefusal(op, arg1, arg2)
}

// sharedRefusal is what readers and the writer both refuse: files other than the database, TEMP objects,
// and setting a PRAGMA that the SQL policy (package sqlpolicy) does not list as settable.
func sharedRefusal(op int, arg1, arg2 string) string {
	switch op {
	case sqlite3.SQLITE_READ, sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE, sqlite3.SQLITE_DROP_TABLE:
		if isChangeQueue(arg1) {
			return whyChangeQueue
		}
	case sqlite3.SQLITE_ALTER_TABLE, sqlite3.SQLITE_CREATE_INDEX, sqlite3.SQLITE_CREATE_TRIGGER:
		if isChangeQueue(arg2) {
			return whyChangeQueue
		}
	case sqlite3.SQLITE_CREATE_TABLE, sqlite3.SQLITE_CREATE_VIEW:
		if strings.HasPrefix(strings.ToLower(arg1), "_raftlite_") {
			return whyOwnPrefix
		}
	case sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH:
		return whyAttach
	case sqlite3.SQLITE_CREATE_TEMP_TABLE, sqlite3.SQLITE_CREATE_TEMP_INDEX, sqlite3.SQLITE_CREATE_TEMP_TRIGGER,
		sqlite3.SQLITE_CREATE_TEMP_VIEW:
		return whyTemp
	case sqlite3.SQLITE_PRAGMA:
		if arg2 != "" && !sqlpolicy.Settable(arg1) {
			return fmt.Sprintf("PRAGMA %s may be read but not set: the setting would hold for one connection of one node, not for the replicated database", strings.ToLower(arg1))
		}
	}
	return ""
}

// isChangeQueue reports whether table is one of the change queue's tables. Their contents differ between
// nodes (each captures with its own configuration, and prunes on its own): a write that read them would
// make the replicas diverge.
func isChangeQueue(table string) bool {
	return strings.EqualFold(table, changeTable) || strings.EqualFold(table, changeStateTable)
}

// refusal remembers why a connection's authorizer last refused something. A connection serves one
// goroutine at a time (the writer under DB.wmu, a reader while checked out of the pool), and SQLite calls
// the authorizer on that goroutine, while it prepares the statement.
type refusal struct{ reason string }

// verdict is the authorizer's answer for reason ("" allows), remembering the reason of a refusal.
func (r *refusal) verdict(reason string) int {
	if reason == "" {
		return sqlite3.SQLITE_OK
	}
	r.reason = reason
	return sqlite3.SQLITE_DENY
}

// refusals maps each connection with an authorizer to its refusal, for explainRefusal, which knows only
// the connection.
var refusals sync.Map // *sqlite3.SQLiteConn → *refusal

// trackRefusals records r as the refusal of conn's authorizer.
func trackRefusals(conn *sqlite3.SQLiteConn, r *refusal) { refusals.Store(conn, r) }

// forgetRefusals drops a closed connection's entry.
func forgetRefusals(conn *sqlite3.SQLiteConn) { refusals.Delete(conn) }

// refusedError is SQLite's "not authorized" with the authorizer's reason.
type refusedError struct {
	reason string
	err    error
}

func (e *refusedError) Error() string { return "not authorized: " + e.reason }
func (e *refusedError) Unwrap() error { return e.err }

// explainRefusal gives an error from preparing a statement on conn the reason its authorizer refused it,
// if that is what the error is.
func explainRefusal(conn *sqlite3.SQLiteConn, err error) error {
	var se sqlite3.Error
	if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrAuth {
		return err
	}
	v, ok := refusals.Load(conn)
	if !ok {
		return err
	}
	if r := v.(*refusal); r.reason != "" {
		return &refusedError{reason: r.reason, err: err}
	}
	return err
}
