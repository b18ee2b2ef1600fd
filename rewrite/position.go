package rewrite

import "github.com/raftlite/raftlite/sqlscan"

// Several of the names the rules look for can also be used as plain names: CURRENT_TIME is a column
// alias in "SELECT 1 current_time", and date(now) is a table with a column in "INSERT INTO date(now) ...".
// Rewriting those would break the statement, so rules only fire where an expression can start, judged by
// the token before. Anything not recognised as such a position is left alone, which is always safe: the
// apply side evaluates what remains with a deterministic clock and PRNG.

// exprKeywords are the keywords after which an expression starts. IN, FROM, AS, SET and the like are
// missing on purpose: a name follows them.
var exprKeywords = []string{
	"SELECT", "DISTINCT", "ALL", "WHERE", "AND", "OR", "NOT", "ON", "CASE", "WHEN", "THEN", "ELSE",
	"BETWEEN", "LIKE", "GLOB", "REGEXP", "MATCH", "IS", "ESCAPE", "HAVING", "BY", "LIMIT", "OFFSET",
	"RETURNING",
}

// exprPosition reports whether the identifier at k is where an expression starts.
func (w *walker) exprPosition(k int) bool {
	if k == 0 {
		return false
	}
	switch prev := w.toks[k-1]; prev.Kind {
	case sqlscan.Operator:
		return true
	case sqlscan.LParen:
		return w.nameDepth != w.depth
	case sqlscan.Comma:
		return w.nameDepth != w.depth && !w.inList[len(w.inList)-1]
	case sqlscan.Ident:
		if w.is(k-2, "INDEXED") { // INDEXED BY names an index
			return false
		}
		for _, kw := range exprKeywords {
			if prev.IsKeyword(w.src, kw) {
				return true
			}
		}
	}
	return false
}

// nameListParen reports whether the '(' at k opens a list of names rather than expressions: an INSERT
// column list (INTO [schema.]table [AS alias] (…)), UPDATE SET (a, b) = …, an upsert's conflict target,
// JOIN … USING (…), or a CTE's column list (name(…) AS (…)).
func (w *walker) nameListParen(k int) bool {
	if w.is(k-1, "SET") || w.is(k-1, "CONFLICT") || w.is(k-1, "USING") {
		return true
	}
	if !w.isName(k - 1) {
		return false
	}
	if w.cteHeader(k) {
		return true
	}
	j := k - 1
	if w.is(j-1, "AS") && w.isName(j-2) {
		j -= 2
	}
	if w.kind(j-1) == sqlscan.Dot && w.isName(j-2) {
		j -= 2
	}
	return w.is(j-1, "INTO")
}

// cteHeader reports whether the '(' at k closes into "AS (", "AS NOT MATERIALIZED" or "AS MATERIALIZED",
// i.e. it belongs to a common table expression's name rather than to a function call.
func (w *walker) cteHeader(k int) bool {
	c := w.match[k]
	if c < 0 || !w.is(c+1, "AS") {
		return false
	}
	return w.kind(c+2) == sqlscan.LParen || w.is(c+2, "NOT") || w.is(c+2, "MATERIALIZED")
}

func (w *walker) isName(k int) bool {
	switch w.kind(k) {
	case sqlscan.Ident, sqlscan.QuotedIdent, sqlscan.String:
		return true
	}
	return false
}
