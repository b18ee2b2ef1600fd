// Package sqlpolicy decides, in one place and from one table, which SQL a client may send and which
// settings a connection may take, and makes the one analysis of each statement that everything on a
// request's way in uses: its kind, whether it returns rows, and the PRAGMA it names.
//
// Two layers enforce the policy. The API refuses a whole request (rqlite's "disallowed pragma") that would
// change how the node stores data, which only the node itself may decide, or that sets a connection
// setting changing what SQL means: on the writer it would last until a restart on one replica and not on
// another, and on a pooled reader it would change other clients' answers. SQLite's authorizer on every
// connection (package db) then refuses, statement by statement, setting any PRAGMA the table does not list
// as settable, whatever the SQL's spelling.
package sqlpolicy

import (
	"strings"

	"github.com/raftlite/raftlite/sqlscan"
)

// rule is what the policy allows of one PRAGMA.
type rule uint8

const (
	readable    rule = iota // may be read; setting it is refused by the connection (the default)
	settable                // may be set: it belongs to the database file, which every replica changes alike, or changes only performance
	refusedSet              // a request that sets it is refused whole, with rqlite's "disallowed pragma"
	refusedEver             // a request that names it at all is refused whole
)

// pragmas is the policy's table. A PRAGMA it does not name may be read and not set.
var pragmas = map[string]rule{
	// Settable. foreign_keys is applied per request on the writer (db/solo.go) and reset after.
	"foreign_keys": settable, "user_version": settable, "application_id": settable, "auto_vacuum": settable,
	"page_size": settable, "incremental_vacuum": settable, "cache_size": settable, "cache_spill": settable,
	"secure_delete": settable, "shrink_memory": settable,
	// Read with an argument (the argument names a table or index), so "settable" to the authorizer.
	"table_info": settable, "table_xinfo": settable, "index_info": settable, "index_xinfo": settable,
	"index_list": settable, "foreign_key_list": settable, "foreign_key_check": settable,
	"integrity_check": settable, "quick_check": settable, "pragma_list": settable,

	// How this node stores data: the node's own business (rqlite refuses these too).
	"wal_checkpoint": refusedEver,
	"journal_mode":   refusedSet, "wal_autocheckpoint": refusedSet, "synchronous": refusedSet,
	"locking_mode": refusedSet, "mmap_size": refusedSet, "temp_store_directory": refusedSet,
	"data_store_directory": refusedSet, "threads": refusedSet, "busy_timeout": refusedSet,
	"soft_heap_limit": refusedSet, "hard_heap_limit": refusedSet, "cell_size_check": refusedSet,
	"query_only": refusedSet, "writable_schema": refusedSet,
	// Connection settings that change what SQL means, or what a result looks like.
	"recursive_triggers": refusedSet, "case_sensitive_like": refusedSet, "reverse_unordered_selects": refusedSet,
	"legacy_alter_table": refusedSet, "ignore_check_constraints": refusedSet, "defer_foreign_keys": refusedSet,
	"trusted_schema": refusedSet, "automatic_index": refusedSet, "short_column_names": refusedSet,
	"full_column_names": refusedSet, "count_changes": refusedSet, "empty_result_callbacks": refusedSet,
}

func ruleOf(name string) rule { return pragmas[strings.ToLower(name)] }

// Settable reports whether a connection may set the PRAGMA name (the authorizer's question).
func Settable(name string) bool { return ruleOf(name) == settable }

// Statement is what the analysis of one statement found, made once when a request arrives.
type Statement struct {
	sqlscan.Stmt // its text and place in the request's SQL
	Kind         sqlscan.Kind
	Returning    bool   // it returns rows from a write: RETURNING, or EXPLAIN
	Pragma       string // the name of the PRAGMA it is, if it is one
	SetsPragma   bool   // and it gives the PRAGMA a value
}

// Analyze splits sql into statements and describes each.
func Analyze(sql string) []Statement {
	pieces := sqlscan.Split(sql)
	out := make([]Statement, len(pieces))
	for i, piece := range pieces {
		info := sqlscan.Analyze(piece.Text)
		st := Statement{Stmt: piece, Kind: info.Kind, Returning: info.Returning || info.Kind == sqlscan.Explain}
		if info.Kind == sqlscan.PragmaStmt {
			if _, name, setting, ok := sqlscan.Pragma(piece.Text); ok {
				st.Pragma, st.SetsPragma = name, setting
			}
		}
		out[i] = st
	}
	return out
}

// Refused reports whether the policy refuses a request holding these statements whole.
func Refused(stmts []Statement) bool {
	for _, st := range stmts {
		if st.Pragma == "" {
			continue
		}
		switch ruleOf(st.Pragma) {
		case refusedEver:
			return true
		case refusedSet:
			if st.SetsPragma {
				return true
			}
		}
	}
	return false
}
