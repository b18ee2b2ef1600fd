//go:build sqlite_column_metadata

package db

import (
	"context"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/command"
)

// Columns are named after the table they come from, not an alias, and expressions keep their names (as
// rqlite does).
func TestQualifyColumns(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO foo VALUES(1, 'x')"))
	res, err := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, QualifyColumns: true,
		Statements: stmts("SELECT f2.id, f2.name, 1+1 FROM foo AS f2")})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Results[0].Rows.Columns, ","); got != "foo.id,foo.name,1+1" {
		t.Errorf("columns = %s", got)
	}
	// The driver's cached names must not have been changed for unqualified queries.
	res, _ = d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY,
		Statements: stmts("SELECT f2.id, f2.name, 1+1 FROM foo AS f2")})
	if got := strings.Join(res.Results[0].Rows.Columns, ","); got != "id,name,1+1" {
		t.Errorf("unqualified columns = %s", got)
	}
}

func TestFTS5AndMathFunctions(t *testing.T) {
	d := openTest(t)
	res := apply(t, d, execReq("CREATE VIRTUAL TABLE docs USING fts5(body)", "INSERT INTO docs VALUES('raft replicated sqlite')"))
	if r := res[0].Results[0]; r.failed() {
		t.Fatalf("fts5: %+v", r.Exec)
	}
	rows := query(t, d, "SELECT count(*), sqrt(16) FROM docs WHERE docs MATCH 'sqlite'")
	if rows[0][0] != int64(1) || rows[0][1] != 4.0 {
		t.Errorf("got %v", rows[0])
	}
}
