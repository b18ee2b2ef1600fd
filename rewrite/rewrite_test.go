package rewrite

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testNow has sub-millisecond digits, to check that they are truncated like SQLite's own 'now'.
var testNow = time.Date(2026, 11, 21, 5, 13, 0, 123987654, time.UTC)

const (
	nowLit  = "'2026-11-21 05:13:00.123'"
	tsLit   = "'2026-11-21 05:13:00'"
	dateLit = "'2026-11-21'"
	timeLit = "'05:13:00'"
)

var all = Options{Random: true, Time: true}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// pattern turns an expected output into a regexp: <I> is a random() literal, <Bn> a blob of n bytes, and
// <NOW>, <TS>, <DATE>, <TIME> are the literals for testNow. Everything else must match byte for byte.
func pattern(want string) *regexp.Regexp {
	q := regexp.QuoteMeta(want)
	q = strings.NewReplacer(
		"<I>", `(?:\d+|\(-\d+\))`,
		"<NOW>", regexp.QuoteMeta(nowLit),
		"<TS>", regexp.QuoteMeta(tsLit),
		"<DATE>", regexp.QuoteMeta(dateLit),
		"<TIME>", regexp.QuoteMeta(timeLit),
	).Replace(q)
	q = regexp.MustCompile(`<B(\d+)>`).ReplaceAllString(q, `x'(?:[0-9A-F]{2}){$1}'`)
	return regexp.MustCompile("^" + q + "$")
}

type rewriteCase struct {
	name, in, want string // want "" means unchanged
}

func runCases(t *testing.T, opts Options, cases []rewriteCase) {
	t.Helper()
	for _, c := range cases {
		out, changed := Rewrite(c.in, opts, testNow, newRand())
		if c.want == "" {
			if changed || out != c.in {
				t.Errorf("%s: Rewrite(%q) = %q, %v; want it unchanged", c.name, c.in, out, changed)
			}
			continue
		}
		if !changed || !pattern(c.want).MatchString(out) {
			t.Errorf("%s: Rewrite(%q)\n got %q, %v\nwant %q", c.name, c.in, out, changed, c.want)
		}
	}
}

func TestRewriteRandom(t *testing.T) {
	runCases(t, all, []rewriteCase{
		{"random", "SELECT random()", "SELECT <I>"},
		{"case and trivia", "SELECT RaNdOm ( /* c */ ) + 1", "SELECT <I> + 1"},
		{"insert values", "INSERT INTO t VALUES(random(), randomblob(8))", "INSERT INTO t VALUES(<I>, <B8>)"},
		{"with argument", "SELECT random(1)", ""},
		{"qualified", "SELECT t.random()", ""},
		{"column", "SELECT random FROM t", ""},
		{"quoted", `SELECT "random"(), [random]()`, ""},
		{"in string and comment", "SELECT 'random()' -- random()\n, /* random() */ 1", ""},
		{"parameter glued on", "SELECT ?1random()", ""},
		{"table named random", "INSERT INTO random(a) VALUES(random())", "INSERT INTO random(a) VALUES(<I>)"},
		{"blob zero", "SELECT randomblob(0)", "SELECT <B1>"},
		{"blob negative", "SELECT randomblob(-3), randomblob( - 2 )", "SELECT <B1>, <B1>"},
		{"blob plus", "SELECT randomblob(+2)", "SELECT <B2>"},
		{"blob hex", "SELECT randomblob(0x03)", "SELECT <B3>"},
		{"blob hex two's complement", "SELECT randomblob(0xFFFFFFFFFFFFFFFF)", "SELECT <B1>"},
		{"blob too big", "SELECT randomblob(1048577)", ""},
		{"blob huge", "SELECT randomblob(99999999999999999999)", ""},
		{"blob not a literal", "SELECT randomblob(n), randomblob(2.0), randomblob(1_0), randomblob('2'), randomblob(1+1)", ""},
		{"blob no args", "SELECT randomblob()", ""},
		{"order by", "SELECT * FROM t ORDER BY random()", ""},
		{"order by expression", "SELECT * FROM t ORDER BY a, abs(random()) % 3 DESC", ""},
		{"order by then limit", "SELECT * FROM t ORDER BY random() LIMIT random()", "SELECT * FROM t ORDER BY random() LIMIT <I>"},
		{"order by in subquery", "SELECT (SELECT a FROM t ORDER BY random() LIMIT 1), random()",
			"SELECT (SELECT a FROM t ORDER BY random() LIMIT 1), <I>"},
		{"order by subquery ends at paren", "SELECT * FROM (SELECT a FROM t ORDER BY random()) WHERE a > random()",
			"SELECT * FROM (SELECT a FROM t ORDER BY random()) WHERE a > <I>"},
		{"window order by", "SELECT row_number() OVER (ORDER BY random()), random() FROM t",
			"SELECT row_number() OVER (ORDER BY random()), <I> FROM t"},
		{"aggregate order by", "SELECT group_concat(a ORDER BY randomblob(2)), randomblob(2) FROM t",
			"SELECT group_concat(a ORDER BY randomblob(2)), <B2> FROM t"},
		{"subquery inside order by", "SELECT a FROM t ORDER BY (SELECT random() LIMIT 1), random()", ""},
		{"group by", "SELECT a FROM t GROUP BY random() HAVING random() > 0 ORDER BY random()",
			"SELECT a FROM t GROUP BY random() HAVING <I> > 0 ORDER BY random()"},
		{"compound order by", "SELECT random() UNION SELECT 2 ORDER BY random()", ""}, // terms must match columns
		{"compound order by other", "SELECT random(), 1 UNION SELECT 2, 3 ORDER BY 2", "SELECT <I>, 1 UNION SELECT 2, 3 ORDER BY 2"},
		{"compound in subquery", "SELECT (SELECT 1 UNION SELECT random() ORDER BY random()), random()", ""},
		{"negative stays an expression", "SELECT x -random()", "SELECT x -<I>"},
	})
}

func TestRewriteTime(t *testing.T) {
	runCases(t, all, []rewriteCase{
		{"datetime now", "SELECT datetime('now')", "SELECT datetime(<NOW>)"},
		{"all functions", "SELECT date('now'), time('NOW'), datetime('Now'), julianday('now'), unixepoch('now')",
			"SELECT date(<NOW>), time(<NOW>), datetime(<NOW>), julianday(<NOW>), unixepoch(<NOW>)"},
		{"upper-case names", "SELECT DATETIME('now'), JulianDay('now')", "SELECT DATETIME(<NOW>), JulianDay(<NOW>)"},
		{"with modifiers", "SELECT datetime('now', '+1 day', 'localtime')", "SELECT datetime(<NOW>, '+1 day', 'localtime')"},
		{"bare now is a column", "SELECT date(now), strftime('%s', NOW)", ""},
		{"zero arguments", "SELECT date(), time(), datetime(), julianday(), unixepoch()",
			"SELECT date(<NOW>), time(<NOW>), datetime(<NOW>), julianday(<NOW>), unixepoch(<NOW>)"},
		{"zero arguments with trivia", "SELECT datetime( /* x */ )", "SELECT datetime(<NOW> /* x */ )"},
		{"strftime", "SELECT strftime('%s', 'now'), strftime('%Y', 'now', '-1 day')",
			"SELECT strftime('%s', <NOW>), strftime('%Y', <NOW>, '-1 day')"},
		{"strftime format only", "SELECT strftime('%s') + 1", "SELECT strftime('%s', <NOW>) + 1"},
		{"strftime format only, trivia", "SELECT strftime('%s' /* f */ )", "SELECT strftime('%s', <NOW> /* f */ )"},
		{"strftime no args", "SELECT strftime()", ""},
		{"strftime now as format", "SELECT strftime('now')", "SELECT strftime('now', <NOW>)"},
		{"timediff", "SELECT timediff('now', '2000-01-01'), timediff('2000-01-01', 'now'), timediff('now','now')",
			"SELECT timediff(<NOW>, '2000-01-01'), timediff('2000-01-01', <NOW>), timediff(<NOW>,<NOW>)"},
		{"timediff no args", "SELECT timediff()", ""},
		{"now in another position", "SELECT date('2020-01-01', 'now'), datetime('now ')", ""},
		{"now not alone", "SELECT date('now' || ''), date((now))", ""},
		{"double-quoted now", `SELECT date("now")`, ""},
		{"nested", "SELECT date(datetime('now'), time())", "SELECT date(datetime(<NOW>), time(<NOW>))"},
		{"qualified", "SELECT x.date('now'), x.datetime()", ""},
		{"not a call", "SELECT date, time, now FROM t", ""},
		{"now column", "SELECT now FROM t WHERE now > 1", ""},
		{"unterminated call", "SELECT datetime('now'", ""},
		{"current keywords", "SELECT CURRENT_TIMESTAMP, current_date, Current_Time",
			"SELECT <TS>, <DATE>, <TIME>"},
		{"current quoted or qualified", `SELECT "CURRENT_TIMESTAMP", [current_date], t.current_time`, ""},
		{"current as alias", "SELECT 1 current_time, 2 AS current_date, a current_timestamp FROM t", ""},
		{"current as column name", "INSERT INTO t(a, current_time) VALUES(current_date, current_time)",
			"INSERT INTO t(a, current_time) VALUES(<DATE>, <TIME>)"},
		{"current in SET", "UPDATE t SET current_time = current_time, a = 1, current_date = (current_date)",
			"UPDATE t SET current_time = <TIME>, a = 1, current_date = (<DATE>)"},
		{"SET tuple", "UPDATE t SET (a, current_time) = (1, current_time)", "UPDATE t SET (a, current_time) = (1, <TIME>)"},
		{"upsert", "INSERT INTO t VALUES(1) ON CONFLICT(current_time) DO UPDATE SET b = datetime() WHERE c < current_time",
			"INSERT INTO t VALUES(1) ON CONFLICT(current_time) DO UPDATE SET b = datetime(<NOW>) WHERE c < <TIME>"},
		{"insert into a table named date", "INSERT INTO date(now) VALUES(date('now'))", "INSERT INTO date(now) VALUES(date(<NOW>))"},
		{"insert with schema and alias", "INSERT INTO main.date AS d (now) VALUES(1)", ""},
		{"cte named date", "WITH date(now) AS (SELECT 1) SELECT date('now') FROM date",
			"WITH date(now) AS (SELECT 1) SELECT date(<NOW>) FROM date"},
		{"time in order by is fine", "SELECT * FROM t ORDER BY datetime('now'), CURRENT_DATE",
			"SELECT * FROM t ORDER BY datetime(<NOW>), <DATE>"},
		{"glued string", "SELECT 'a'||CURRENT_DATE||'b'", "SELECT 'a'||<DATE>||'b'"},
		{"where", "DELETE FROM t WHERE ts < datetime('now', '-1 hour') RETURNING *",
			"DELETE FROM t WHERE ts < datetime(<NOW>, '-1 hour') RETURNING *"},
		{"from list", "SELECT current_time, a FROM t, current_time, u JOIN current_date ON b = current_date, current_timestamp WHERE c = current_date",
			"SELECT <TIME>, a FROM t, current_time, u JOIN current_date ON b = <DATE>, current_timestamp WHERE c = <DATE>"},
		{"indexed by", "SELECT a FROM t INDEXED BY current_time ORDER BY current_time", "SELECT a FROM t INDEXED BY current_time ORDER BY <TIME>"},
		{"case", "SELECT CASE WHEN a THEN current_date ELSE date() END", "SELECT CASE WHEN a THEN <DATE> ELSE date(<NOW>) END"},
	})
}

func TestRewriteStatements(t *testing.T) {
	runCases(t, all, []rewriteCase{
		{"create untouched", "CREATE TABLE t(a DEFAULT (random()), b DEFAULT CURRENT_TIMESTAMP, c DEFAULT (datetime('now')))", ""},
		{"create view untouched", "CREATE VIEW v AS SELECT random(), datetime()", ""},
		{"create temp table as untouched", "CREATE TEMP TABLE t AS SELECT random()", ""},
		{"alter untouched", "ALTER TABLE t ADD COLUMN c DEFAULT CURRENT_TIMESTAMP", ""},
		{"explain create untouched", "EXPLAIN QUERY PLAN CREATE TABLE t(a DEFAULT (random()))", ""},
		{"explain select rewritten", "EXPLAIN QUERY PLAN SELECT random()", "EXPLAIN QUERY PLAN SELECT <I>"},
		{"trigger untouched, next statement rewritten",
			"CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES(random(), datetime()); END; SELECT random()",
			"CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES(random(), datetime()); END; SELECT <I>"},
		{"multi-statement", "INSERT INTO t VALUES(random());\n  -- note\nINSERT INTO t VALUES(datetime('now')) ;",
			"INSERT INTO t VALUES(<I>);\n  -- note\nINSERT INTO t VALUES(datetime(<NOW>)) ;"},
		{"multi-statement mixed", "CREATE TABLE t(a DEFAULT CURRENT_DATE); INSERT INTO t VALUES(CURRENT_DATE)",
			"CREATE TABLE t(a DEFAULT CURRENT_DATE); INSERT INTO t VALUES(<DATE>)"},
		{"nothing", "INSERT INTO t(id, name) VALUES(?, ?)", ""},
		{"near misses", "SELECT created_date, update_time, xrandom(), datex('now'), randomize() FROM t", ""},
		{"empty", "", ""},
		{"only comments", "-- random()\n/* datetime() */", ""},
	})
}

func TestRewriteOptions(t *testing.T) {
	in := "SELECT random(), datetime('now'), CURRENT_TIME"
	runCases(t, Options{Random: true}, []rewriteCase{{"random only", in, "SELECT <I>, datetime('now'), CURRENT_TIME"}})
	runCases(t, Options{Time: true}, []rewriteCase{{"time only", in, "SELECT random(), datetime(<NOW>), <TIME>"}})
	runCases(t, Options{}, []rewriteCase{{"neither", in, ""}})

	out, changed := Rewrite(in, all, testNow, nil)
	if !changed || !pattern("SELECT random(), datetime(<NOW>), <TIME>").MatchString(out) {
		t.Errorf("nil rnd: got %q, %v", out, changed)
	}
	for _, y := range []int{-1, 10000} {
		now := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		out, _ := Rewrite(in, all, now, newRand())
		if !pattern("SELECT <I>, datetime('now'), CURRENT_TIME").MatchString(out) {
			t.Errorf("year %d: time rules should be off, got %q", y, out)
		}
	}
}

// fixedSource is a rand.Source that returns the given values in turn.
type fixedSource struct{ vals []uint64 }

func (s *fixedSource) Uint64() uint64 {
	v := s.vals[0]
	s.vals = append(s.vals[1:], v)
	return v
}

func TestRewriteNegativeLiteral(t *testing.T) {
	rnd := rand.New(&fixedSource{[]uint64{uint64(1<<64 - 42)}}) // int64 -42
	out, _ := Rewrite("SELECT x -random(), 1-random(), -random()", all, testNow, rnd)
	if want := "SELECT x -(-42), 1-(-42), -(-42)"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	rnd = rand.New(&fixedSource{[]uint64{1 << 63}}) // the most negative int64
	out, _ = Rewrite("SELECT random()", all, testNow, rnd)
	if want := "SELECT (-9223372036854775808)"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func TestRewriteGluedTokens(t *testing.T) {
	// A positive literal must not fuse with an identifier or '.' after it into one illegal token.
	for in, want := range map[string]string{
		"SELECT random()x":        "SELECT 42 x",
		"SELECT random()AS x":     "SELECT 42 AS x",
		"SELECT random()/**/x":    "SELECT 42/**/x",
		"SELECT 1+random()":       "SELECT 1+42",
		"SELECT CURRENT_DATE'x'":  "SELECT '2026-11-21' 'x'",
		"SELECT randomblob(1)'x'": "SELECT x'2A' 'x'",
	} {
		out, _ := Rewrite(in, all, testNow, rand.New(&fixedSource{[]uint64{42}}))
		if out != want {
			t.Errorf("Rewrite(%q) = %q, want %q", in, out, want)
		}
	}
}

func TestRewriteBlobBytes(t *testing.T) {
	rnd := rand.New(&fixedSource{[]uint64{0x0807060504030201, 0xFFEEDDCCBBAA0A09}})
	out, _ := Rewrite("SELECT randomblob(10)", all, testNow, rnd)
	if want := "SELECT x'0102030405060708090A'"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	out, changed := Rewrite("SELECT randomblob(1048576)", all, testNow, newRand())
	if !changed || len(out) != len("SELECT x''")+2*1048576 {
		t.Fatalf("randomblob(1048576): changed %v, length %d", changed, len(out))
	}
}

func TestRewriteDeterministic(t *testing.T) {
	in := "INSERT INTO t VALUES(random(), randomblob(16), datetime())"
	a, _ := Rewrite(in, all, testNow, newRand())
	b, _ := Rewrite(in, all, testNow, newRand())
	if a != b {
		t.Fatalf("same seed, different output:\n%q\n%q", a, b)
	}
	c, _ := Rewrite(in, all, testNow, rand.New(rand.NewPCG(3, 4)))
	if a == c {
		t.Fatal("different seeds, same output")
	}
}

func TestRewriteInstant(t *testing.T) {
	// Truncation, not rounding: 59.9996 s stays in the same second (and the same day).
	now := time.Date(2026, 12, 31, 23, 59, 59, 999_600_000, time.FixedZone("X", 3600))
	out, _ := Rewrite("SELECT datetime('now'), CURRENT_TIMESTAMP, CURRENT_DATE, CURRENT_TIME", all, now, nil)
	want := "SELECT datetime('2026-12-31 22:59:59.999'), '2026-12-31 22:59:59', '2026-12-31', '22:59:59'"
	if out != want {
		t.Fatalf("got %q, want %q (UTC, truncated)", out, want)
	}
}

func TestRewriteNoopAllocations(t *testing.T) {
	in := "INSERT INTO users(id, name, email, created_at, score) VALUES(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
	rnd := newRand()
	if n := testing.AllocsPerRun(100, func() { Rewrite(in, all, testNow, rnd) }); n != 0 {
		t.Errorf("no-op Rewrite allocates %v times", n)
	}
}

func TestParseInteger(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "42": 42, "0x10": 16, "0XfF": 255, "007": 7,
		"0xFFFFFFFFFFFFFFFF": -1, "999999999999999999": 999999999999999999} {
		if got, ok := parseInteger(s); !ok || got != want {
			t.Errorf("parseInteger(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "1.0", "1e3", "1_0", "0x", "0x1_0", "0x10000000000000000", "9999999999999999999", ".5"} {
		if _, ok := parseInteger(s); ok {
			t.Errorf("parseInteger(%q) accepted", s)
		}
	}
}
