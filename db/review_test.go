package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/command"
)

// Two replicas apply the same log; one of them restarts (reopens the database) in the middle. Anything a
// request could leave on the writer's connection would make them diverge.
func TestReplicasAgreeAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(filepath.Join(dir, "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(filepath.Join(dir, "b.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := []*command.Request{
		execReq("CREATE TABLE t (x INTEGER CHECK (x >= 0))", "CREATE TABLE u (v)"),
		execReq("INSERT INTO t VALUES (5)"),
		execReq("PRAGMA ignore_check_constraints = ON"),
		execReq("CREATE TEMP TRIGGER audit AFTER INSERT ON t BEGIN INSERT INTO u VALUES ('temp'); END"),
		execReq("PRAGMA recursive_triggers = ON", "PRAGMA max_page_count = 1", "PRAGMA optimize"),
		// restart of b happens here
		execReq("INSERT INTO t VALUES (-1)"),
		execReq("INSERT INTO u VALUES (last_insert_rowid()), (changes()), (total_changes())"),
		execReq("INSERT INTO t VALUES (7)", "INSERT INTO u VALUES (last_insert_rowid()), (changes()), (total_changes())"),
	}
	for i, req := range log {
		if i == 5 {
			path := b.Path()
			b.Close()
			if b, err = Open(path, Options{}); err != nil {
				t.Fatal(err)
			}
		}
		apply(t, a, req)
		apply(t, b, req)
	}
	defer b.Close()
	var da, db strings.Builder
	a.Dump(context.Background(), &da, nil)
	b.Dump(context.Background(), &db, nil)
	if da.String() != db.String() {
		t.Errorf("replicas diverged:\n%s\n---\n%s", da.String(), db.String())
	}
	if !strings.Contains(da.String(), `INSERT INTO "u" VALUES(0);
INSERT INTO "u" VALUES(0);
INSERT INTO "u" VALUES(0);
INSERT INTO "u" VALUES(2);`) {
		t.Errorf("last_insert_rowid() inside a request should see that request's insert:\n%s", da.String())
	}
}

func TestConnectionStateIsRefused(t *testing.T) {
	d := openTest(t)
	for _, sql := range []string{
		"PRAGMA ignore_check_constraints = ON", "PRAGMA case_sensitive_like = 1", "PRAGMA max_page_count = 1",
		"PRAGMA schema_version = 9", "PRAGMA optimize", "CREATE TEMP TABLE x (a)", "CREATE TEMP VIEW v AS SELECT 1",
	} {
		res := apply(t, d, execReq(sql))
		if e := res[0].Results[0].Exec; e == nil || e.Error == "" {
			t.Errorf("writer allowed %q", sql)
		}
	}
	for _, sql := range []string{"PRAGMA user_version = 3", "PRAGMA cache_size = -4000"} {
		if e := apply(t, d, execReq(sql))[0].Results[0].Exec; e == nil || e.Error != "" {
			t.Errorf("writer refused %q: %+v", sql, e)
		}
	}
	for _, sql := range []string{"ATTACH '/etc/hostname' AS h", "PRAGMA case_sensitive_like = 1", "CREATE TEMP TABLE x (a)"} {
		res, err := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts(sql)})
		if err != nil {
			t.Fatal(err)
		}
		if r := res.Results[0].Rows; r == nil || r.Error == "" {
			t.Errorf("reader allowed %q", sql)
		}
	}
}

// A deferred foreign key violation fails the COMMIT on every replica alike: the request fails with that
// error, the others in its batch are applied, and the log moves on.
func TestRefusedCommitIsTheRequestsResult(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "db.sqlite"), Options{ForeignKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	apply(t, d, execReq("CREATE TABLE p (id INTEGER PRIMARY KEY)",
		"CREATE TABLE c (pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)"))
	res := apply(t, d,
		execReq("INSERT INTO p VALUES (1)"),
		execReq("INSERT INTO c VALUES (5)"),
		execReq("INSERT INTO c VALUES (1)"),
	)
	if !strings.Contains(res[1].Error, "FOREIGN KEY constraint failed") {
		t.Errorf("violating request: %+v", res[1])
	}
	if res[0].Error != "" || res[2].Error != "" {
		t.Errorf("the other requests: %+v %+v", res[0], res[2])
	}
	if n := count(t, d, "c"); n != 1 {
		t.Errorf("rows in c = %d, want 1", n)
	}
	if st := d.State(); st.AppliedIndex != 4 {
		t.Errorf("applied = %d, want 4", st.AppliedIndex)
	}
}

// INSERT OR ROLLBACK inside an explicit transaction rolls the whole transaction back, as SQLite does, and
// the COMMIT that follows finds no transaction.
func TestRollbackConflictEndsTheUserTransaction(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE t (id INTEGER PRIMARY KEY)", "INSERT INTO t VALUES (9)"))
	res := apply(t, d, execReq("INSERT INTO t VALUES (1)", "BEGIN", "INSERT INTO t VALUES (2)", "INSERT OR ROLLBACK INTO t VALUES (9)", "COMMIT"))
	if e := res[0].Results[4].Exec.Error; e != "cannot commit - no transaction is active" {
		t.Errorf("COMMIT after the rollback: %q", e)
	}
	got := query(t, d, "SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY id)")[0][0]
	if got != "1,9" {
		t.Errorf("rows = %v, want 1,9 (the statement before BEGIN stays, the transaction is undone)", got)
	}
}
