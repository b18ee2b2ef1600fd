package rewrite

import (
	"math/rand/v2"
	"time"

	"github.com/raftlite/raftlite/sqlscan"
)

// Options selects which rules apply (rqlite's norwrandom/norwtime turn them off).
type Options struct {
	Random bool // rewrite random() and randomblob(N)
	Time   bool // rewrite 'now' in date/time functions, zero-argument date/time calls and CURRENT_* keywords
}

// Rewrite returns sql with non-deterministic calls replaced by literals. now is the single instant used
// for every 'now' in sql (all statements in it); rnd supplies randomness. changed reports whether any text
// was replaced; when false, out == sql exactly. Never fails: anything it cannot rewrite safely it leaves.
// random() becomes int64(rnd.Uint64()), covering SQLite's full signed range; like every use of a
// *rand.Rand, rnd must not be shared between goroutines. A nil rnd disables the random rules, and a now
// outside the years 0000-9999 (which SQLite's date functions cannot express) disables the time rules.
func Rewrite(sql string, opts Options, now time.Time, rnd *rand.Rand) (out string, changed bool) {
	if rnd == nil {
		opts.Random = false
	}
	now = now.UTC()
	if y := now.Year(); y < 0 || y > 9999 {
		opts.Time = false
	}
	if !mayRewrite(sql, opts) {
		return sql, false
	}
	return rewrite(sql, opts, now, rnd, true)
}

// Statements is Rewrite for SQL already split into its statements (by sqlscan.Split, or an analysis made
// from it): the text is not scanned again to find them.
func Statements(sql string, stmts []sqlscan.Stmt, opts Options, now time.Time, rnd *rand.Rand) (out string, changed bool) {
	if rnd == nil {
		opts.Random = false
	}
	now = now.UTC()
	if y := now.Year(); y < 0 || y > 9999 {
		opts.Time = false
	}
	return rewriteStatements(sql, stmts, opts, now, rnd, true)
}

// rewrite does the work once the options are settled. filter skips statements that mayRewrite rules out;
// tests turn it off to check that the filter never hides a rewrite.
func rewrite(sql string, opts Options, now time.Time, rnd *rand.Rand, filter bool) (string, bool) {
	return rewriteStatements(sql, sqlscan.Split(sql), opts, now, rnd, filter)
}

// rewriteStatements rewrites stmts, the statements of sql.
func rewriteStatements(sql string, stmts []sqlscan.Stmt, opts Options, now time.Time, rnd *rand.Rand, filter bool) (string, bool) {
	if !opts.Random && !opts.Time {
		return sql, false
	}
	var edits []edit
	for _, st := range stmts {
		if (!filter || mayRewrite(st.Text, opts)) && !frozen(st.Text) {
			edits = statementEdits(edits, st, opts)
		}
	}
	if len(edits) == 0 {
		return sql, false
	}
	return apply(sql, edits, now, rnd), true
}

// frozen reports whether a statement must be left alone: in CREATE and ALTER, expressions are column
// defaults, CHECKs, trigger and view bodies and must stay dynamic. EXPLAIN of such a statement likewise.
func frozen(stmt string) bool {
	for {
		switch sqlscan.Analyze(stmt).Kind {
		case sqlscan.Create, sqlscan.Alter:
			return true
		case sqlscan.Explain:
			stmt = afterExplain(stmt)
		default:
			return false
		}
	}
}

// afterExplain returns stmt without its leading "EXPLAIN [QUERY PLAN]".
func afterExplain(stmt string) string {
	s := sqlscan.NewScanner(stmt)
	words := 0
	for {
		t := s.Next()
		switch {
		case !t.Significant():
			continue
		case words == 0 && t.IsKeyword(stmt, "EXPLAIN"),
			words == 1 && t.IsKeyword(stmt, "QUERY"),
			words == 2 && t.IsKeyword(stmt, "PLAN"):
			words++
			continue
		}
		if words == 2 { // EXPLAIN QUERY without PLAN: QUERY is not part of the prefix after all
			return ""
		}
		return stmt[t.Start:]
	}
}
