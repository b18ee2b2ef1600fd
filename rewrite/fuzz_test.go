package rewrite

import (
	"database/sql"
	"strings"
	"sync"
	"testing"

	"github.com/raftlite/raftlite/sqlscan"
)

var fuzzSeeds = []string{
	"INSERT INTO foo VALUES(RANDOM(), datetime('now'), randomblob(4), CURRENT_TIMESTAMP, datetime())",
	"SELECT x -random(), strftime('%s'), timediff(now, 'now') FROM t ORDER BY random() LIMIT random()",
	"SELECT (SELECT a FROM t ORDER BY random()), random() GROUP BY randomblob(2) HAVING random()",
	"CREATE TRIGGER tr BEGIN SELECT random(); END; SELECT random()x, ?1random(), 'a'CURRENT_DATE",
	"UPDATE t SET current_time = current_time, (a, b) = (date(), 1) WHERE c < julianday('now')",
	"INSERT INTO date(now) VALUES(date(now)); WITH date(now) AS (SELECT 1) SELECT unixepoch() FROM date",
	"EXPLAIN QUERY PLAN SELECT randomblob(-0x10), randomblob(+3), randomblob(1048577)",
	"SELECT 1 current_time, a AS current_date, t.random(), \"random\"() -- random()",
}

// anyName reports whether s mentions, in any case, a name some rule looks for. If not, nothing can change.
func anyName(s string) bool {
	l := strings.ToLower(s)
	for _, n := range []string{"random", "date", "time", "julianday", "unixepoch", "current_"} {
		if strings.Contains(l, n) {
			return true
		}
	}
	return false
}

var (
	fuzzDBOnce sync.Once
	fuzzDB     *sql.DB
)

// preparer returns a database with the tables and indexes the seeds and generated statements refer to.
func preparer(t *testing.T) *sql.DB {
	fuzzDBOnce.Do(func() {
		db, err := sql.Open("sqlite3", ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		_, err = db.Exec(`CREATE TABLE t(a, b, c, x, now, current_time, ts);
			CREATE TABLE foo(a, b, c, d, e); CREATE TABLE date(now); CREATE TABLE random(a);
			CREATE TABLE "current_date"(x); CREATE UNIQUE INDEX ta ON t(a); CREATE INDEX "current_timestamp" ON t(b)`)
		if err != nil {
			t.Fatal(err)
		}
		fuzzDB = db
	})
	return fuzzDB
}

// prepares reports whether SQLite compiles stmt. Only preparing, never running: nothing changes the database
// (statements whose preparation has effects are not passed here).
func prepares(db *sql.DB, stmt string) bool {
	st, err := db.Prepare(stmt)
	if err != nil {
		return false
	}
	st.Close()
	return true
}

func FuzzRewrite(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, true, true)
	}
	f.Fuzz(func(t *testing.T, in string, random, tm bool) {
		opts := Options{Random: random, Time: tm}
		out, changed := Rewrite(in, opts, testNow, newRand())
		if changed != (out != in) {
			t.Fatalf("changed = %v, but output %q vs input %q", changed, out, in)
		}
		if !anyName(in) && changed {
			t.Fatalf("%q has nothing to rewrite but became %q", in, out)
		}
		// The prefilter must never hide a rewrite.
		if full, _ := rewrite(in, opts, testNow, newRand(), false); full != out {
			t.Fatalf("prefilter changes the result for %q:\n with    %q\n without %q", in, out, full)
		}
		// Given the statements already split, the result is the same.
		if split, _ := Statements(in, sqlscan.Split(in), opts, testNow, newRand()); split != out {
			t.Fatalf("Statements differs from Rewrite for %q:\n %q\n %q", in, split, out)
		}
		if !changed {
			return
		}
		inStmts, outStmts := sqlscan.Split(in), sqlscan.Split(out)
		if len(inStmts) != len(outStmts) {
			t.Fatalf("%q (%d statements) became %q (%d statements)", in, len(inStmts), out, len(outStmts))
		}
		// A second pass finds nothing left to do.
		if again, changed := Rewrite(out, opts, testNow, newRand()); changed {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
		// What SQLite compiled before rewriting it still compiles.
		if len(in) > 2000 || strings.IndexByte(in, 0) >= 0 {
			return
		}
		db := preparer(t)
		for i := range inStmts {
			switch sqlscan.Analyze(inStmts[i].Text).Kind {
			case sqlscan.PragmaStmt, sqlscan.Attach, sqlscan.Detach, sqlscan.Vacuum, sqlscan.Explain:
				continue
			}
			if inStmts[i].Text != outStmts[i].Text && prepares(db, inStmts[i].Text) && !prepares(db, outStmts[i].Text) {
				t.Fatalf("statement %q compiles, rewritten %q does not", inStmts[i].Text, outStmts[i].Text)
			}
		}
	})
}
