package rewrite

import (
	"database/sql"
	"math"
	"math/rand/v2"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// openDB returns an in-memory database on a single connection, so temp tables persist between calls.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// queryRewritten rewrites q and returns its single result row.
func queryRewritten(t *testing.T, db *sql.DB, q string, rnd *rand.Rand, dest ...any) string {
	t.Helper()
	out, changed := Rewrite(q, all, testNow, rnd)
	if !changed {
		t.Fatalf("%q was not rewritten", q)
	}
	if err := db.QueryRow(out).Scan(dest...); err != nil {
		t.Fatalf("%q (from %q): %v", out, q, err)
	}
	return out
}

func TestSQLiteTimeValues(t *testing.T) {
	db := openDB(t)
	var datetime, date, tm, ms, ts, cdate, ctime, noArgs string
	var unix int64
	var jd, subsec float64
	queryRewritten(t, db, `SELECT datetime('now'), date(), time('now'), strftime('%Y-%m-%d %H:%M:%f'),
		CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME, unixepoch(), julianday('now'), unixepoch('now', 'subsec'),
		datetime()`, newRand(), &datetime, &date, &tm, &ms, &ts, &cdate, &ctime, &unix, &jd, &subsec, &noArgs)
	check := func(name, got, want string) {
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("datetime('now')", datetime, "2026-11-21 05:13:00")
	check("date()", date, "2026-11-21")
	check("time(now)", tm, "05:13:00")
	check("strftime(%f)", ms, "2026-11-21 05:13:00.123") // exactly the millisecond instant
	check("CURRENT_TIMESTAMP", ts, "2026-11-21 05:13:00")
	check("CURRENT_DATE", cdate, "2026-11-21")
	check("CURRENT_TIME", ctime, "05:13:00")
	check("datetime()", noArgs, "2026-11-21 05:13:00")
	if unix != testNow.Unix() {
		t.Errorf("unixepoch() = %d, want %d", unix, testNow.Unix())
	}
	ms64 := testNow.UnixMilli()
	if want := float64(ms64) / 1000; math.Abs(subsec-want) > 1e-6 {
		t.Errorf("unixepoch('now','subsec') = %v, want %v", subsec, want)
	}
	if want := float64(ms64)/86400000 + 2440587.5; math.Abs(jd-want) > 1e-8 {
		t.Errorf("julianday('now') = %v, want %v", jd, want)
	}

	var diff string
	queryRewritten(t, db, "SELECT timediff('now', '2026-11-20 05:13:00')", newRand(), &diff)
	check("timediff", diff, "+0000-00-01 00:00:00.123")
}

func TestSQLiteInsert(t *testing.T) {
	db := openDB(t)
	if _, err := db.Exec("CREATE TABLE t(a, b, c, d DEFAULT CURRENT_TIMESTAMP)"); err != nil {
		t.Fatal(err)
	}
	out, _ := Rewrite("INSERT INTO t(a, b, c) VALUES(random(), randomblob(8), CURRENT_TIMESTAMP); "+
		"INSERT INTO t(a, b, c) VALUES(-random(), randomblob(-1), datetime())", all, testNow, newRand())
	if _, err := db.Exec(out); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	rows, err := db.Query("SELECT typeof(a), typeof(b), length(b), c, d FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	wantLen := []int{8, 1}
	for i := 0; rows.Next(); i++ {
		var ta, tb, c, d string
		var n int
		if err := rows.Scan(&ta, &tb, &n, &c, &d); err != nil {
			t.Fatal(err)
		}
		// c is the rewritten instant; rqlite would store the string 'CURRENT_TIMESTAMP' here. d is a column
		// default, evaluated by SQLite itself, because CREATE statements are never rewritten.
		if ta != "integer" || tb != "blob" || n != wantLen[i] || c != "2026-11-21 05:13:00" || d == "CURRENT_TIMESTAMP" {
			t.Errorf("row %d: %s %s %d %q %q", i, ta, tb, n, c, d)
		}
	}
}

func TestSQLiteNegativeRandom(t *testing.T) {
	db := openDB(t)
	for _, v := range []int64{-42, math.MinInt64, 7, math.MaxInt64} {
		rnd := rand.New(&fixedSource{[]uint64{uint64(v)}})
		var typ string
		var got int64
		var minus, half float64 // 1 - MinInt64 overflows into a real, in SQLite as with random() itself
		out := queryRewritten(t, db, "SELECT typeof(random()), random(), 1 - random(), 0.5 -random()", rnd, &typ, &got, &minus, &half)
		if typ != "integer" || got != v || minus != 1-float64(v) || half != 0.5-float64(v) {
			t.Errorf("%q: typeof %s, value %d, 1-v %v, 0.5-v %v; want integer %d", out, typ, got, minus, half, v)
		}
	}
}

func TestSQLiteStaysValid(t *testing.T) {
	db := openDB(t)
	if _, err := db.Exec(`CREATE TABLE t(a, current_time); INSERT INTO t VALUES(1, 2), (2, 3);
		CREATE TABLE "current_date"(x); CREATE INDEX "current_timestamp" ON t(a)`); err != nil {
		t.Fatal(err)
	}
	// Each of these prepares before rewriting and must still prepare (and run) after it.
	for _, q := range []string{
		"SELECT a FROM t ORDER BY random()",
		"SELECT a FROM t ORDER BY random() LIMIT random() % 2 + 1",
		"SELECT a, count(*) FROM t GROUP BY random()", // a literal would be an out-of-range column index
		"SELECT random()x, randomblob(2)y FROM t",
		"SELECT 1 current_time, a AS current_date FROM t",
		"SELECT row_number() OVER (ORDER BY random()), random() FROM t",
		"INSERT INTO t(a, current_time) VALUES(random(), current_time)",
		"UPDATE t SET current_time = current_time WHERE a < random()",
		"WITH date(now) AS (SELECT 1) SELECT date('now'), now FROM date",
		"SELECT a FROM t WHERE a > -random() AND julianday() > 0",
		"SELECT strftime('%s') - strftime('%s', 'now')",
		"SELECT a FROM t GROUP BY CURRENT_DATE ORDER BY CURRENT_TIME",
		"SELECT random() UNION ALL SELECT a FROM t ORDER BY random()", // compound: ORDER BY terms match columns
		"SELECT datetime() UNION ALL SELECT a FROM t ORDER BY datetime()",
		"SELECT a, current_date FROM t, current_date WHERE x = current_date",
		"SELECT a FROM t INDEXED BY current_timestamp WHERE a > current_timestamp",
		"DELETE FROM t WHERE a = random() RETURNING a, current_time, datetime()",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("original %q fails: %v", q, err)
		}
		out, _ := Rewrite(q, all, testNow, newRand())
		if _, err := db.Exec(out); err != nil {
			t.Errorf("%q rewritten to %q fails: %v", q, out, err)
		}
	}
}
