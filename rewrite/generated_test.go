package rewrite

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// stmtGen generates plausible statements that put the rewritten names in many grammatical positions:
// as calls, as arguments, as column, table and alias names, inside ORDER BY / GROUP BY, subqueries,
// windows, SET and FROM lists.
type stmtGen struct{ r *rand.Rand }

func (g stmtGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g stmtGen) expr(d int) string {
	if d > 3 {
		return g.pick("a", "1", "'now'", "now", "current_time", "current_date", "current_timestamp", "-1", "x", "?")
	}
	switch g.r.IntN(15) {
	case 0:
		return g.pick("random()", "randomblob(4)", "randomblob(-1)", "random ( )", "randomblob(0x2)")
	case 1:
		return g.pick("date", "time", "datetime", "julianday", "unixepoch") + "(" + g.args(d) + ")"
	case 2:
		return "strftime(" + g.args(d) + ")"
	case 3:
		return "timediff(" + g.args(d) + ")"
	case 4:
		return g.expr(d+1) + " " + g.pick("+", "-", "||", "=", "<", "AND", "OR", "IS", "IS NOT", "LIKE") + " " + g.expr(d+1)
	case 5:
		return "(" + g.expr(d+1) + ")"
	case 6:
		return "(SELECT " + g.expr(d+1) + g.from(d) + g.tail(d) + ")"
	case 7:
		return "CASE WHEN " + g.expr(d+1) + " THEN " + g.expr(d+1) + " ELSE " + g.expr(d+1) + " END"
	case 8:
		return "coalesce(" + g.expr(d+1) + ", " + g.expr(d+1) + ")"
	case 9:
		return g.expr(d+1) + " IN (" + g.expr(d+1) + ", " + g.expr(d+1) + ")"
	case 10:
		return "CAST(" + g.expr(d+1) + " AS TEXT)"
	case 11:
		return "-" + g.expr(d+1)
	case 12:
		return "row_number() OVER (" + g.pick("", "PARTITION BY "+g.expr(d+1)+" ") + "ORDER BY " + g.expr(d+1) + ")"
	case 13:
		return "group_concat(" + g.expr(d+1) + " ORDER BY " + g.expr(d+1) + ")"
	}
	return g.expr(4)
}

func (g stmtGen) args(d int) string {
	a := make([]string, g.r.IntN(4))
	for i := range a {
		a[i] = g.pick(g.expr(d+1), "'now'", "'%s'", "'+1 day'", "'NOW'", "/* c */ now")
	}
	return strings.Join(a, ", ")
}

func (g stmtGen) alias() string {
	return g.pick("", "", " x", " AS y", " current_time", " AS current_date", " now", " date")
}

func (g stmtGen) from(d int) string {
	return g.pick("", " FROM t", " FROM t, date", " FROM t JOIN date ON "+g.expr(d+1), " FROM t, current_date",
		" FROM date", " FROM t AS current_time", " FROM t INDEXED BY current_timestamp", " FROM t JOIN date USING (now)")
}

func (g stmtGen) tail(d int) string {
	s := ""
	if g.r.IntN(3) == 0 {
		s += " WHERE " + g.expr(d+1)
	}
	if g.r.IntN(4) == 0 {
		s += " GROUP BY " + g.expr(d+1)
		if g.r.IntN(2) == 0 {
			s += " HAVING " + g.expr(d+1)
		}
	}
	if g.r.IntN(3) == 0 {
		s += " ORDER BY " + g.expr(d+1) + g.pick("", " DESC", ", "+g.expr(d+1))
	}
	if g.r.IntN(4) == 0 {
		s += " LIMIT " + g.expr(d+1)
	}
	return s
}

func (g stmtGen) stmt() string {
	switch g.r.IntN(8) {
	case 0:
		return "INSERT INTO t(" + g.pick("a", "a, current_time", "now, b", "current_time") + ") VALUES(" + g.expr(1) + ", " + g.expr(1) + ")"
	case 1:
		return "UPDATE t SET " + g.pick("a", "current_time", "now") + " = " + g.expr(1) + ", " + g.pick("b", "current_time", "now") + " = " + g.expr(1) + g.tail(1)
	case 2:
		return "DELETE FROM t WHERE " + g.expr(1) + g.pick("", " RETURNING "+g.expr(1))
	case 3:
		return "INSERT INTO date(now) SELECT " + g.expr(1) + g.from(1) + g.tail(1)
	case 4:
		return "WITH date(now) AS (SELECT " + g.expr(1) + ") SELECT " + g.expr(1) + g.alias() + " FROM date" + g.tail(1)
	case 5:
		return "INSERT INTO t(a, b) VALUES(" + g.expr(1) + ", 1) ON CONFLICT(a) DO UPDATE SET current_time = " + g.expr(1) + ", b = " + g.expr(1) + " WHERE " + g.expr(1)
	case 6:
		return "SELECT " + g.expr(0) + g.alias() + g.from(0) + " UNION ALL SELECT " + g.expr(0) + g.from(0) + g.tail(0)
	}
	return "SELECT " + g.expr(0) + g.alias() + ", " + g.expr(0) + g.alias() + g.from(0) + g.tail(0)
}

// TestGeneratedStatementsStayValid checks on generated statements that whatever SQLite compiles before
// rewriting it still compiles after, and that rewriting twice changes nothing more.
func TestGeneratedStatementsStayValid(t *testing.T) {
	db := preparer(t)
	g := stmtGen{rand.New(rand.NewPCG(9, 9))}
	n := 5000
	if testing.Short() {
		n = 1000
	}
	checked := 0
	for i := range n {
		in := g.stmt()
		out, changed := Rewrite(in, all, testNow, rand.New(rand.NewPCG(uint64(i), 0)))
		if !changed {
			continue
		}
		if again, changed := Rewrite(out, all, testNow, newRand()); changed {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
		if prepares(db, in) {
			checked++
			if !prepares(db, out) {
				t.Fatalf("%q compiles, but not its rewrite\n%q", in, out)
			}
		}
	}
	t.Logf("%d rewritten statements compiled and were checked", checked)
	if checked < n/40 {
		t.Fatalf("only %d of %d generated statements compiled: the generator has drifted from the schema", checked, n)
	}
}
