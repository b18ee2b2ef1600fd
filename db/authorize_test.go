package db

import (
	"context"
	"testing"

	"github.com/raftlite/raftlite/command"
)

// resultError is the error of a statement's result, whatever its shape.
func resultError(r Result) string {
	switch {
	case r.Error != "":
		return r.Error
	case r.Exec != nil:
		return r.Exec.Error
	case r.Rows != nil:
		return r.Rows.Error
	}
	return ""
}

// A refused statement says why in its result: SQLite's "not authorized", then the reason.
func TestRefusalsSayWhy(t *testing.T) {
	d := openTest(t)
	// A trigger's body is checked when a statement that fires it is prepared, not when it is created.
	apply(t, d, execReq("CREATE TABLE foo (x)", "CREATE TRIGGER sneaky AFTER INSERT ON foo BEGIN DELETE FROM _raftlite_state; END"))
	for _, tc := range []struct{ sql, why string }{
		{"INSERT INTO _raftlite_state VALUES (2, 0, 0, NULL)", whyStateTable},
		{"UPDATE _raftlite_state SET applied_index = 0", whyStateTable},
		{"DELETE FROM _RAFTLITE_STATE", whyStateTable},
		{"DROP TABLE _raftlite_state", whyStateTable},
		{"ALTER TABLE _raftlite_state ADD COLUMN y", whyStateTable},
		{"CREATE INDEX i ON _raftlite_state(applied_index)", whyStateTable},
		{"CREATE TRIGGER tr AFTER UPDATE ON _raftlite_state BEGIN SELECT 1; END", whyStateTable},
		{"INSERT INTO foo VALUES (1)", whyStateTable}, // fires trigger sneaky (below), which changes the state table
		// A write that reads it: mid-batch it holds what depends on each node's batching.
		{"INSERT INTO foo SELECT applied_index FROM _raftlite_state", whyStateTable},
		{"SELECT applied_index FROM _raftlite_state", whyStateTable}, // sent as a write
		{"SAVEPOINT _raftlite_mine", whySavepoint},
		{"PRAGMA optimize", whyOptimize},
		{"ATTACH DATABASE 'other.db' AS other", whyAttach},
		{"CREATE TEMP TABLE t (x)", whyTemp},
		{"CREATE TEMP VIEW v AS SELECT 1", whyTemp},
		{"PRAGMA recursive_triggers = ON", "PRAGMA recursive_triggers may be read but not set: the setting would hold for one connection of one node, not for the replicated database"},
	} {
		res := apply(t, d, execReq(tc.sql))
		if got, want := resultError(res[0].Results[0]), "not authorized: "+tc.why; got != want {
			t.Errorf("%s:\n got %q\nwant %q", tc.sql, got, want)
		}
	}
	// The read connections say why too, for what they refuse.
	for _, tc := range []struct{ sql, why string }{
		{"ATTACH DATABASE 'other.db' AS other", whyAttach},
		{"CREATE TEMP TABLE t (x)", whyTemp},
	} {
		res, err := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts(tc.sql)})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := resultError(res.Results[0]), "not authorized: "+tc.why; got != want {
			t.Errorf("query %s:\n got %q\nwant %q", tc.sql, got, want)
		}
	}
	// Queries may read the state table; nothing above changed it.
	if rows := query(t, d, "SELECT count(*) FROM _raftlite_state"); rows[0][0] != int64(1) {
		t.Errorf("state table rows: %v", rows)
	}
	if got := d.State().AppliedIndex; got != uint64(1+16) {
		t.Errorf("applied index %d after 17 entries", got)
	}
}
