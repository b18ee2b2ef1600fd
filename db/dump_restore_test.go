package db

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/command"
)

// A dump restores cleanly into an empty raftlite database (as /db/load runs it: one request that stops at
// its first error) and into plain SQLite, also with an AUTOINCREMENT table whose name sorts after
// sqlite_sequence and with sqlite_sequence left behind by a dropped one.
func TestDumpRestoresIntoEmptyDatabases(t *testing.T) {
	d := openTest(t)
	apply(t, d,
		execReq(`CREATE TABLE gone (id INTEGER PRIMARY KEY AUTOINCREMENT)`, `INSERT INTO gone DEFAULT VALUES`, `DROP TABLE gone`),
		execReq(`CREATE TABLE a (x)`, `INSERT INTO a VALUES (1)`, `ANALYZE`),
	)
	dumpOf := func(d *DB) string {
		t.Helper()
		var sb strings.Builder
		if err := d.Dump(context.Background(), &sb, nil); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	restore := func(dump string) {
		t.Helper()
		fresh := openTest(t)
		res := apply(t, fresh, &command.Request{RollbackOnError: true, Statements: stmts(dump)})
		if e := resultError(res[0].Results[0]); e != "" || res[0].Error != "" {
			t.Fatalf("restoring into raftlite: %q %q\n%s", e, res[0].Error, dump)
		}
		if got := dumpOf(fresh); got != dump {
			t.Errorf("the restored database dumps differently:\n%s\n---\n%s", dump, got)
		}
		plain, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "plain.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		if _, err := plain.Exec(dump); err != nil {
			t.Fatalf("restoring into plain SQLite: %v\n%s", err, dump)
		}
		if strings.Contains(dump, stateTable) {
			t.Errorf("the dump holds %s:\n%s", stateTable, dump)
		}
	}
	restore(dumpOf(d)) // sqlite_sequence exists, empty, with no AUTOINCREMENT table left
	apply(t, d, execReq(`CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)`, `INSERT INTO t(v) VALUES ('x'), ('y')`))
	dump := dumpOf(d)
	if !strings.Contains(dump, `INSERT INTO "sqlite_sequence" VALUES('t',2);`) {
		t.Errorf("the dump lacks t's sequence:\n%s", dump)
	}
	restore(dump)
}

// A dump of some tables holds their indexes and triggers, and the views it names, and nothing of the
// other tables: it restores into an empty database.
func TestDumpOfSomeTablesRestores(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq(`CREATE TABLE t (x)`, `CREATE INDEX t_x ON t(x)`, `CREATE TABLE other (y)`,
		`CREATE INDEX other_y ON other(y)`, `CREATE VIEW vt AS SELECT x FROM t`, `CREATE VIEW vo AS SELECT y FROM other`,
		`CREATE TRIGGER other_t AFTER INSERT ON other BEGIN INSERT INTO t VALUES (new.y); END`, `INSERT INTO t VALUES (1)`))
	var sb strings.Builder
	if err := d.Dump(context.Background(), &sb, []string{"t", "vt"}); err != nil {
		t.Fatal(err)
	}
	want := "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE t (x);\nINSERT INTO \"t\" VALUES(1);\n" +
		"CREATE INDEX t_x ON t(x);\nCREATE VIEW vt AS SELECT x FROM t;\nCOMMIT;\n"
	if sb.String() != want {
		t.Fatalf("dump of t and vt:\n%s\nwant:\n%s", sb.String(), want)
	}
	fresh := openTest(t)
	res := apply(t, fresh, &command.Request{RollbackOnError: true, Statements: stmts(sb.String())})
	if e := resultError(res[0].Results[0]); e != "" {
		t.Fatalf("restoring: %s", e)
	}
}
