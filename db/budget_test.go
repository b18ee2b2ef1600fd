package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/command"
)

// A read whose rows would not fit in the request's allowance fails with a clear error instead of taking
// the node's memory; the allowance is shared by the request's statements, and smaller reads are whole.
func TestReadResultIsBounded(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "db.sqlite"), Options{MaxResultBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	read := func(sqls ...string) []Result {
		t.Helper()
		res, err := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts(sqls...)})
		if err != nil {
			t.Fatal(err)
		}
		return res.Results
	}
	small := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 1000) SELECT x, 'some text' FROM c"
	if r := read(small)[0]; r.Rows.Error != "" || len(r.Rows.Values) != 1000 {
		t.Fatalf("a small read: error %q, %d rows", r.Rows.Error, len(r.Rows.Values))
	}
	endless := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x, printf('%100d', x) FROM c"
	r := read(endless)[0]
	if !strings.Contains(r.Rows.Error, "query result too large: more than 1 MiB") || r.Rows.Values != nil {
		t.Fatalf("an endless read: error %q, %d rows kept", r.Rows.Error, len(r.Rows.Values))
	}
	// One value larger than the whole allowance fails inside SQLite, before it is made.
	if r := read("SELECT length(randomblob(2000000))")[0]; !strings.Contains(r.Rows.Error, "too big") {
		t.Fatalf("a 2 MB blob: error %q", r.Rows.Error)
	}
	// Each statement alone fits; together they do not.
	half := "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 4000) SELECT x, printf('%100d', x) FROM c"
	if rs := read(half); rs[0].Rows.Error != "" {
		t.Fatalf("one statement: %q", rs[0].Rows.Error)
	}
	if rs := read(half, half, half); rs[0].Rows.Error != "" || rs[2].Rows.Error == "" {
		t.Fatalf("three statements: %q, %q", rs[0].Rows.Error, rs[2].Rows.Error)
	}

	unlimited, err := Open(filepath.Join(t.TempDir(), "db.sqlite"), Options{MaxResultBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer unlimited.Close()
	res, err := unlimited.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts(half, half, half)})
	if err != nil || res.Results[2].Rows.Error != "" || len(res.Results[2].Rows.Values) != 4000 {
		t.Fatalf("no limit: %v %+v", err, res.Results[2].Rows.Error)
	}
}

// RETURNING rows of an applied write are bounded too, and the cut falls at the same row on every replica:
// the statement fails, so an atomic request is undone everywhere alike.
func TestAppliedResultIsBounded(t *testing.T) {
	defer func(old int64) { applyResultBytes = old }(applyResultBytes)
	applyResultBytes = 1 << 20
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE t (x, pad)"))
	insert := &command.Statement{Returning: true, Sql: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 20000) " +
		"INSERT INTO t SELECT x, printf('%100d', x) FROM c RETURNING *"}
	res := apply(t, d, &command.Request{Transaction: true, Statements: []*command.Statement{insert}})
	if r := res[0].Results[0]; r.Rows == nil || !strings.Contains(r.Rows.Error, "query result too large") {
		t.Fatalf("an oversized RETURNING: %+v", r)
	}
	if n := count(t, d, "t"); n != 0 {
		t.Fatalf("the failed atomic request left %d rows", n)
	}
	small := &command.Statement{Returning: true, Sql: "INSERT INTO t VALUES (1, 'a') RETURNING x"}
	res = apply(t, d, &command.Request{Statements: []*command.Statement{small}})
	if r := res[0].Results[0]; r.Rows == nil || r.Rows.Error != "" || len(r.Rows.Values) != 1 {
		t.Fatalf("a small RETURNING: %+v", r.Rows)
	}
}
