package rewrite

import "github.com/raftlite/raftlite/sqlscan"

// maxBlob is the largest randomblob(N) rewritten; a bigger literal would bloat the log, and the apply
// side's deterministic PRNG handles the call anyway.
const maxBlob = 1 << 20

// rules applies the rewrite rules to the identifier at k and returns the index of the last token it
// consumed (k itself unless a call was replaced as a whole).
func (w *walker) rules(k int) int {
	t := w.toks[k]
	if n := t.End - t.Start; n < len("date") || n > len("current_timestamp") {
		return k // no rule's name has this length: skip the comparisons
	}
	is := func(kw string) bool { return t.IsKeyword(w.src, kw) }
	switch {
	case !w.opts.Random || w.exclDepth >= 0:
	case is("RANDOM"):
		if w.exprPosition(k) {
			return w.random(k)
		}
		return k
	case is("RANDOMBLOB"):
		if w.exprPosition(k) {
			return w.randomblob(k)
		}
		return k
	}
	if !w.opts.Time {
		return k
	}
	var lit literal
	timeArg, zeroArgs := 0, false
	switch {
	case is("CURRENT_TIMESTAMP"):
		lit = litTimestamp
	case is("CURRENT_DATE"):
		lit = litDate
	case is("CURRENT_TIME"):
		lit = litTime
	case is("DATE"), is("TIME"), is("DATETIME"), is("JULIANDAY"), is("UNIXEPOCH"):
		timeArg, zeroArgs = 0, true
	case is("STRFTIME"):
		timeArg = 1
	case is("TIMEDIFF"):
		timeArg = -1
	default:
		return k
	}
	if !w.exprPosition(k) {
		return k
	}
	if lit != litNone {
		w.add(t.Start, t.End, lit)
	} else {
		w.timeCall(k, timeArg, zeroArgs)
	}
	return k
}

// random replaces "random ( )" with an integer literal.
func (w *walker) random(k int) int {
	if w.kind(k+1) != sqlscan.LParen || w.kind(k+2) != sqlscan.RParen {
		return k
	}
	w.add(w.toks[k].Start, w.toks[k+2].End, litInt)
	return k + 2
}

// randomblob replaces "randomblob ( [+|-] N )", N an integer literal, with a blob literal of max(N,1)
// random bytes.
func (w *walker) randomblob(k int) int {
	if w.kind(k+1) != sqlscan.LParen {
		return k
	}
	j := k + 2
	neg := false
	if w.kind(j) == sqlscan.Operator {
		switch w.toks[j].Text(w.src) {
		case "-":
			neg = true
		case "+":
		default:
			return k
		}
		j++
	}
	if w.kind(j) != sqlscan.Number || w.kind(j+1) != sqlscan.RParen {
		return k
	}
	n, ok := parseInteger(w.toks[j].Text(w.src))
	if !ok {
		return k
	}
	if neg {
		n = -n // wraps for the most negative value, as in SQLite; either way it is < 1
	}
	n = max(n, 1)
	if n > maxBlob {
		return k
	}
	w.edits = append(w.edits, edit{start: w.base + w.toks[k].Start, end: w.base + w.toks[j+1].End, lit: litBlob, n: int(n)})
	return j + 1
}

// timeCall handles a date/time function call at k. timeArg is the index of the argument that is the
// time-value (-1: timediff, whose two arguments both are); zeroArgs says that a call without arguments
// means 'now'. strftime with only its format gets the time-value added.
func (w *walker) timeCall(k, timeArg int, zeroArgs bool) {
	open := k + 1
	if w.kind(open) != sqlscan.LParen || w.match[open] < 0 || w.cteHeader(open) {
		return
	}
	closeAt := w.match[open]
	var args [2][2]int // token ranges [from, to) of the first two arguments
	n := 0             // number of arguments
	from := open + 1
	for j := open + 1; j <= closeAt; j++ {
		switch w.toks[j].Kind {
		case sqlscan.LParen:
			j = w.match[j] // matched, since the enclosing pair is
		case sqlscan.Comma, sqlscan.RParen:
			if n < len(args) {
				args[n] = [2]int{from, j}
			}
			n++
			from = j + 1
		}
	}
	if n == 1 && args[0][0] == args[0][1] {
		n = 0 // "()" has no argument, rather than one empty one
	}
	switch {
	case n == 0 && zeroArgs:
		w.add(w.toks[open].End, w.toks[open].End, litNow)
	case timeArg == 1 && n == 1:
		end := w.toks[args[0][1]-1].End
		w.add(end, end, litNowArg)
	case timeArg < 0:
		w.nowArg(args[0], n > 0)
		w.nowArg(args[1], n > 1)
	default:
		w.nowArg(args[timeArg], n > timeArg)
	}
}

// nowArg replaces an argument that is exactly the string 'now' (any case). A bare identifier now is a
// column to SQLite (rqlite rewrites it too, which changes the meaning of a statement on a table that has
// such a column), so it is left alone.
func (w *walker) nowArg(r [2]int, present bool) {
	if !present || r[1]-r[0] != 1 {
		return
	}
	t := w.toks[r[0]]
	text := t.Text(w.src)
	if t.Kind == sqlscan.String && len(text) == 5 && text[4] == '\'' && hasPrefixFold(text[1:4], "now") {
		w.add(t.Start, t.End, litNow)
	}
}

func (w *walker) add(start, end int, lit literal) {
	w.edits = append(w.edits, edit{start: w.base + start, end: w.base + end, lit: lit})
}

// parseInteger parses a decimal or 0x hex integer literal as SQLite reads it (hex is 64-bit two's
// complement). ok is false for reals, digit separators, and values SQLite would not read as an integer.
func parseInteger(s string) (int64, bool) {
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		if len(s) > 2+16 {
			return 0, false // SQLite: "hex literal too big"
		}
		var u uint64
		for i := 2; i < len(s); i++ {
			d, ok := hexValue(s[i])
			if !ok {
				return 0, false
			}
			u = u<<4 | uint64(d)
		}
		return int64(u), true
	}
	if len(s) == 0 || len(s) > 18 { // 18 digits always fit; longer ones are far beyond maxBlob anyway
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int64(s[i]-'0')
	}
	return v, true
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
