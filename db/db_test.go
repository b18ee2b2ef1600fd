package db

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/command"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "db.sqlite"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func stmts(sqls ...string) []*command.Statement {
	out := make([]*command.Statement, len(sqls))
	for i, s := range sqls {
		out[i] = &command.Statement{Sql: s}
	}
	return out
}

func execReq(sqls ...string) *command.Request { return &command.Request{Statements: stmts(sqls...)} }

// apply applies requests as consecutive entries starting after the current applied index.
func apply(t *testing.T, d *DB, reqs ...*command.Request) []OpResult {
	t.Helper()
	next := d.State().AppliedIndex + 1
	ops := make([]Op, len(reqs))
	for i, r := range reqs {
		ops[i] = Op{Index: next + uint64(i), Term: 1, Request: r, Env: Env{NowUnixMs: 1700000000000, Seed: uint64(i)}}
	}
	res, err := d.Apply(ops)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func query(t *testing.T, d *DB, sql string) [][]any {
	t.Helper()
	res, err := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts(sql)})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Results[0]
	if r.Rows == nil || r.Rows.Error != "" {
		t.Fatalf("query %q: %+v %+v", sql, r, r.Rows)
	}
	return r.Rows.Values
}

func count(t *testing.T, d *DB, table string) int64 {
	return query(t, d, "SELECT count(*) FROM "+table)[0][0].(int64)
}

func TestApplyBatchAndAppliedIndex(t *testing.T) {
	d := openTest(t)
	res := apply(t, d,
		execReq("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"),
		execReq("INSERT INTO foo(name) VALUES('a')", "INSERT INTO foo(name) VALUES('b')"),
		execReq("INSERT INTO nosuch VALUES(1)", "INSERT INTO foo(name) VALUES('c')"),
	)
	if got := res[1].Results[1].Exec; got.LastInsertID != 2 || got.RowsAffected != 1 {
		t.Errorf("second insert: %+v", got)
	}
	if e := res[2].Results[0].Exec.Error; e != "no such table: nosuch" {
		t.Errorf("error result = %q", e)
	}
	if got := res[2].Results[1].Exec.LastInsertID; got != 3 {
		t.Errorf("a failed statement must not stop a non-transactional request: last id %d", got)
	}
	if st := d.State(); st.AppliedIndex != 3 || st.AppliedTerm != 1 {
		t.Errorf("state %+v", st)
	}
	// The applied index survives a reopen: it is in the same file, written in the same transaction.
	path := d.Path()
	d.Close()
	d2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if st := d2.State(); st.AppliedIndex != 3 {
		t.Errorf("after reopen: %+v", st)
	}
	if n := count(t, d2, "foo"); n != 3 {
		t.Errorf("rows = %d", n)
	}
}

func TestTransactionRequestRollsBack(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"))
	req := execReq("INSERT INTO foo(name) VALUES('x')", "INSERT INTO nosuch VALUES(1)", "INSERT INTO foo(name) VALUES('y')")
	req.Transaction = true
	res := apply(t, d, req)
	if n := len(res[0].Results); n != 2 {
		t.Fatalf("results after the failure must stop: got %d", n)
	}
	if n := count(t, d, "foo"); n != 0 {
		t.Errorf("transaction not rolled back: %d rows", n)
	}
}

// A user's BEGIN/COMMIT/ROLLBACK must not end the writer's batch transaction (which holds the applied
// index); they become savepoints of their own.
func TestUserTransactionStatements(t *testing.T) {
	d := openTest(t)
	res := apply(t, d,
		execReq("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"),
		execReq("BEGIN", "INSERT INTO foo(name) VALUES('a')", "COMMIT"),
		execReq("BEGIN TRANSACTION; INSERT INTO foo(name) VALUES('b'); ROLLBACK;"),
		execReq("BEGIN", "INSERT INTO foo(name) VALUES('c')"), // left open: rolled back
		execReq("COMMIT"),
		execReq("BEGIN", "BEGIN"),
	)
	if n := count(t, d, "foo"); n != 1 {
		t.Errorf("rows = %d, want only the committed one", n)
	}
	if res[3].Error != errLeftOpen {
		t.Errorf("open transaction error = %q", res[3].Error)
	}
	if e := res[4].Results[0].Exec.Error; e != "cannot commit - no transaction is active" {
		t.Errorf("stray COMMIT: %q", e)
	}
	if e := res[5].Results[1].Exec.Error; e != "cannot start a transaction within a transaction" {
		t.Errorf("nested BEGIN: %q", e)
	}
	if st := d.State(); st.AppliedIndex != 6 {
		t.Errorf("applied = %d", st.AppliedIndex)
	}
}

// ON CONFLICT ROLLBACK rolls back the whole transaction. Applied alone in autocommit mode it would undo
// only its own statement; the batch must give the same outcome and keep its other requests.
func TestOuterRollbackIsContained(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE ON CONFLICT ROLLBACK)"))
	res := apply(t, d,
		execReq("INSERT INTO t(v) VALUES('a')"),
		execReq("INSERT INTO t(v) VALUES('b')", "INSERT INTO t(v) VALUES('a')", "INSERT INTO t(v) VALUES('c')"),
		execReq("INSERT INTO t(v) VALUES('d')"),
	)
	if e := res[1].Results[1].Exec.Error; !strings.Contains(e, "UNIQUE constraint failed") {
		t.Errorf("conflicting insert: %q", e)
	}
	got := query(t, d, "SELECT group_concat(v, '') FROM (SELECT v FROM t ORDER BY v)")[0][0]
	if got != "abcd" {
		t.Errorf("rows = %v, want abcd", got)
	}
	if st := d.State(); st.AppliedIndex != 4 {
		t.Errorf("applied = %d", st.AppliedIndex)
	}
}

func TestStateTableIsProtected(t *testing.T) {
	d := openTest(t)
	for _, sql := range []string{
		"UPDATE _raftlite_state SET applied_index = 99",
		"DELETE FROM _raftlite_state",
		"DROP TABLE _raftlite_state",
		"INSERT INTO _raftlite_state VALUES (2, 0, 0, NULL)",
		"ALTER TABLE _raftlite_state ADD COLUMN x",
		"CREATE TRIGGER tr AFTER UPDATE ON _raftlite_state BEGIN SELECT 1; END",
		"RELEASE _raftlite_user_tx",
		"ATTACH 'x.db' AS x",
		"PRAGMA writable_schema = ON",
	} {
		res := apply(t, d, execReq(sql))
		if r := res[0].Results[0]; r.Exec == nil || r.Exec.Error == "" {
			t.Errorf("%q was allowed: %+v", sql, r)
		}
	}
	if st := d.State(); st.AppliedIndex != 9 {
		t.Errorf("applied = %d", st.AppliedIndex)
	}
}

// The writer's clock and random functions follow the command, so replicas agree even on defaults and
// statements that were not rewritten.
func TestDeterministicEnvironment(t *testing.T) {
	run := func() [][]any {
		d := openTest(t)
		apply(t, d, execReq("CREATE TABLE t (r INTEGER, b BLOB, ts TEXT DEFAULT CURRENT_TIMESTAMP, n TEXT)"))
		apply(t, d, execReq("INSERT INTO t(r, b, n) VALUES(random(), randomblob(8), datetime('now'))"))
		return query(t, d, "SELECT r, hex(b), ts, n FROM t")
	}
	a, b := run(), run()
	if len(a) != 1 || len(b) != 1 {
		t.Fatal(a, b)
	}
	for i := range a[0] {
		if a[0][i] != b[0][i] {
			t.Errorf("column %d differs between replicas: %v vs %v", i, a[0][i], b[0][i])
		}
	}
	if a[0][2] != "2023-11-14 22:13:20" || a[0][3] != "2023-11-14 22:13:20" {
		t.Errorf("clock: %v %v", a[0][2], a[0][3])
	}
}

func TestQueryIsReadOnly(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE foo (id INTEGER PRIMARY KEY)"))
	res, err := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts("INSERT INTO foo VALUES(1)")})
	if err != nil {
		t.Fatal(err)
	}
	if e := res.Results[0].Rows.Error; e != errWriteInQuery {
		t.Errorf("error = %q", e)
	}
	// A query-mode request applied on the writer must not write either.
	ops := []Op{{Index: 2, Term: 1, Request: &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts("INSERT INTO foo VALUES(1)")}}}
	out, err := d.Apply(ops)
	if err != nil {
		t.Fatal(err)
	}
	if e := out[0].Results[0].Rows.Error; e != errWriteInQuery {
		t.Errorf("strong write error = %q", e)
	}
	if n := count(t, d, "foo"); n != 0 {
		t.Errorf("rows = %d", n)
	}
}

func TestParametersAndTypes(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, d DATETIME, f BOOLEAN)"))
	ins := &command.Request{Statements: []*command.Statement{{
		Sql: "INSERT INTO t VALUES(?, ?, :s, @b, $d, ?)",
		Parameters: []*command.Parameter{
			{Value: &command.Parameter_I{I: 7}}, {Value: &command.Parameter_D{D: 1.5}},
			{Name: "s", Value: &command.Parameter_S{S: "x"}}, {Name: "b", Value: &command.Parameter_Y{Y: []byte{1, 2}}},
			{Name: "d", Value: &command.Parameter_S{S: "2024-01-02 03:04:05"}}, {Value: &command.Parameter_B{B: true}},
		},
	}}}
	res := apply(t, d, ins)
	if e := res[0].Results[0].Exec; e.Error != "" {
		t.Fatal(e.Error)
	}
	qres, _ := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts("SELECT *, 1+1, NULL FROM t")})
	rows := qres.Results[0].Rows
	wantTypes := []string{"integer", "real", "text", "blob", "datetime", "boolean", "integer", ""}
	if strings.Join(rows.Types, ",") != strings.Join(wantTypes, ",") {
		t.Errorf("types = %v", rows.Types)
	}
	row := rows.Values[0]
	if row[0] != int64(7) || row[1] != 1.5 || row[2] != "x" || string(row[3].([]byte)) != "\x01\x02" ||
		row[4] != "2024-01-02T03:04:05Z" || row[5] != true || row[6] != int64(2) || row[7] != nil {
		t.Errorf("row = %#v", row)
	}
}

func TestCopyInstallAndLoad(t *testing.T) {
	src := openTest(t)
	apply(t, src, execReq("CREATE TABLE foo (id INTEGER PRIMARY KEY, v TEXT)"), execReq("INSERT INTO foo(v) VALUES('a')"))
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	st, err := src.Copy(context.Background(), copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.AppliedIndex != 2 {
		t.Errorf("copy state %+v", st)
	}
	dst := openTest(t)
	apply(t, dst, execReq("CREATE TABLE other (x)"))
	if err := dst.Install(copyPath, 2); err != nil {
		t.Fatal(err)
	}
	if dst.State().AppliedIndex != 2 || count(t, dst, "foo") != 1 {
		t.Errorf("after install: %+v", dst.State())
	}
	// Load a user's file that carries a foreign state table: ours replaces it.
	user := filepath.Join(t.TempDir(), "user.db")
	if _, err := src.Copy(context.Background(), user); err != nil {
		t.Fatal(err)
	}
	if err := dst.Load(user, 40, 3); err != nil {
		t.Fatal(err)
	}
	if st := dst.State(); st.AppliedIndex != 40 || st.AppliedTerm != 3 {
		t.Errorf("after load: %+v", st)
	}
	if _, err := os.Stat(dst.Path() + "-wal"); err != nil {
		t.Logf("no WAL after load (fine): %v", err)
	}
	// Garbage is refused, and the database is untouched.
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte("this is not a database at all, not even close............................................................................"), 0o600)
	if err := dst.Install(junk, 0); err == nil {
		t.Error("installing garbage succeeded")
	}
	if count(t, dst, "foo") != 1 {
		t.Error("database damaged by a refused install")
	}
}

func TestDumpRestoresIdentically(t *testing.T) {
	d := openTest(t)
	apply(t, d,
		execReq(`CREATE TABLE foo (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, r REAL, b BLOB, d DATETIME, g INTEGER GENERATED ALWAYS AS (id*2) VIRTUAL)`),
		execReq(`INSERT INTO foo(name, r, b, d) VALUES('it''s', 1.0, x'00ff', '2024-01-02 03:04:05'), (NULL, 1e300, NULL, 'not a date')`),
		execReq(`CREATE INDEX foo_name ON foo(name)`, `CREATE VIEW v AS SELECT name FROM foo`),
	)
	var sb strings.Builder
	if err := d.Dump(context.Background(), &sb, nil); err != nil {
		t.Fatal(err)
	}
	dump := sb.String()
	if strings.Contains(dump, stateTable) {
		t.Error("dump contains the state table")
	}
	d2 := openTest(t)
	res := apply(t, d2, &command.Request{Statements: stmts(dump)})
	if r := res[0].Results[0]; r.failed() {
		t.Fatalf("restoring the dump: %+v %+v\n%s", r, r.Exec, dump)
	}
	var sb2 strings.Builder
	d2.Dump(context.Background(), &sb2, nil)
	if sb2.String() != dump {
		t.Errorf("dump of the restored database differs:\n%s\n---\n%s", dump, sb2.String())
	}
}

// The writer refuses transaction control from users at prepare time, as a backstop behind the
// translation to savepoints: nothing a user sends may end the batch transaction.
func TestAuthorizerRefusesTransactionControl(t *testing.T) {
	d := openTest(t)
	for _, sql := range []string{"COMMIT", "ROLLBACK", "BEGIN", "END"} {
		if _, err := d.w.conn.Prepare(sql); err == nil || !strings.Contains(err.Error(), "not authorized") {
			t.Errorf("%s prepared on the writer: err = %v", sql, err)
		}
	}
}

// rqlite reports SQLite's connection-wide last insert id and changes: a statement that is not an INSERT,
// UPDATE or DELETE repeats those of the last one. The writer's own bookkeeping must never show through.
func TestLastInsertIDAndChangesFollowUserStatementsOnly(t *testing.T) {
	d := openTest(t)
	res := apply(t, d, execReq("CREATE TABLE foo (id INTEGER PRIMARY KEY)"))
	if e := res[0].Results[0].Exec; e.LastInsertID != 0 || e.RowsAffected != 0 {
		t.Errorf("CREATE on a fresh database: %+v", e)
	}
	apply(t, d, execReq("INSERT INTO foo VALUES (7), (8)"))
	res = apply(t, d, execReq("CREATE TABLE bar (x)", "BEGIN", "COMMIT"))
	for i, r := range res[0].Results {
		if e := r.Exec; e.LastInsertID != 8 || e.RowsAffected != 2 {
			t.Errorf("statement %d after the insert: %+v, want id 8 and 2 rows", i, e)
		}
	}
	res = apply(t, d, execReq("DELETE FROM foo WHERE id = 99", "CREATE TABLE baz (x)"))
	if e := res[0].Results[1].Exec; e.LastInsertID != 8 || e.RowsAffected != 0 {
		t.Errorf("after a DELETE of nothing: %+v", e)
	}
}

// A SQL dump starts with PRAGMA foreign_keys=OFF and inserts children before parents: with -fk it must
// still load, as it does in rqlite, and enforcement must be back on afterwards.
func TestDumpWithForeignKeysLoads(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "db.sqlite"), Options{ForeignKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dump := `PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id));
INSERT INTO "child" VALUES(1,1);
CREATE TABLE parent (id INTEGER PRIMARY KEY);
INSERT INTO "parent" VALUES(1);
COMMIT;`
	res := apply(t, d, &command.Request{Statements: stmts(dump), RollbackOnError: true})
	if r := res[0].Results[0]; r.failed() {
		t.Fatalf("load: %+v %+v", r, r.Exec)
	}
	if n := count(t, d, "child"); n != 1 {
		t.Fatalf("child rows = %d", n)
	}
	res = apply(t, d, execReq("INSERT INTO child VALUES(2, 99)"))
	if e := res[0].Results[0].Exec.Error; !strings.Contains(e, "FOREIGN KEY constraint failed") {
		t.Errorf("foreign keys not enforced after the load: %q", e)
	}
}

func TestVacuumRunsAlone(t *testing.T) {
	d := openTest(t)
	res := apply(t, d,
		execReq("CREATE TABLE foo (x)"),
		execReq("VACUUM"),
		execReq("INSERT INTO foo VALUES(1)", "VACUUM"),
		execReq("VACUUM INTO '/tmp/raftlite-should-not-exist.db'"),
	)
	if r := res[1].Results[0].Exec; r == nil || r.Error != "" {
		t.Errorf("VACUUM: %+v", r)
	}
	if e := res[2].Results[1].Exec.Error; !strings.Contains(e, "cannot VACUUM from within a transaction") {
		t.Errorf("VACUUM mixed with other statements: %q", e)
	}
	if e := res[3].Results[0].Exec.Error; e == "" {
		t.Error("VACUUM INTO was run")
	}
	if _, err := os.Stat("/tmp/raftlite-should-not-exist.db"); err == nil {
		t.Error("VACUUM INTO wrote a file")
	}
	if st := d.State(); st.AppliedIndex != 4 {
		t.Errorf("applied = %d", st.AppliedIndex)
	}
}

func TestHandlesFound(t *testing.T) {
	d := openTest(t)
	stmt, err := d.wstmts.prepare("SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	if stmtHandle(stmt) == nil || connHandle(d.w.conn) == nil {
		t.Fatal("cannot find the C handles inside go-sqlite3's SQLiteStmt or SQLiteConn: the driver changed; update handle.go")
	}
}

// A statement that returns rows, sent as a write, must not be left running: that would make the batch's
// COMMIT fail and stop the node applying anything.
func TestRowReturningWritesDoNotWedgeTheWriter(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE foo (id INTEGER PRIMARY KEY)", "INSERT INTO foo VALUES (1), (2), (3)"))
	// noparse: RETURNING is not detected, so the DELETE runs through exec.
	res, err := d.Apply([]Op{{Index: 2, Term: 1, Request: execReq("DELETE FROM foo RETURNING id", "SELECT * FROM foo")}})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if e := res[0].Results[0].Exec; e == nil || e.Error != "" {
		t.Fatalf("delete: %+v", res[0].Results[0])
	}
	apply(t, d, execReq("INSERT INTO foo VALUES (9)"))
	if n := count(t, d, "foo"); n != 1 {
		t.Errorf("rows = %d, want 1", n)
	}
}

func TestFingerprintCatchesChangesWhileStopped(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE foo (x)", "INSERT INTO foo VALUES (1)"))
	path := d.Path()
	d.Close()
	if err := VerifyFingerprint(path); err != nil {
		t.Fatalf("untouched file: %v", err)
	}
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	b, _ := os.ReadFile(path)
	b[len(b)-100] ^= 0xff // a flipped bit in a page SQLite would not notice
	os.WriteFile(path, b, 0o600)
	if err := VerifyFingerprint(path); !errors.Is(err, ErrDamaged) {
		t.Fatalf("damaged file: %v", err)
	}
	if err := VerifyFingerprint(path); err != nil {
		t.Errorf("the fingerprint must be gone after one check: %v", err)
	}
}

// A NUL byte ends the SQL, as in SQLite's C API; SQL that is empty after it must not reach the driver
// (it crashed the process).
func TestNULByteInSQL(t *testing.T) {
	d := openTest(t)
	res := apply(t, d, execReq(" \x00", "CREATE TABLE t (x)\x00 garbage", "\x00DROP TABLE t"))
	for i, r := range res[0].Results {
		if r.failed() {
			t.Errorf("statement %d: %+v", i, r.Exec)
		}
	}
	if n := count(t, d, "t"); n != 0 {
		t.Errorf("rows = %d", n)
	}
	q, err := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts(" \x00")})
	if err != nil || len(q.Results) != 1 {
		t.Errorf("query: %+v %v", q, err)
	}
}
