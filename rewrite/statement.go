package rewrite

import "github.com/raftlite/raftlite/sqlscan"

// walker visits the significant tokens of one statement, tracking just enough context (paren depth,
// ORDER BY/GROUP BY clauses, name positions) to decide where each rule may fire.
type walker struct {
	src   string          // the statement's text
	base  int             // offset of src in the whole SQL string, for edits
	opts  Options         // the rules that apply
	toks  []sqlscan.Token // significant tokens of src
	match []int           // for each '(' the index of its ')', -1 if unmatched (and for other tokens)
	edits []edit

	depth     int    // paren depth at the current token
	nameDepth int    // depth of the paren group that is a list of names (see nameListParen), or -1
	inList    []bool // per open paren level (outermost first): in a SET or FROM list, whose items start with names
	exclDepth int    // depth of the ORDER BY / GROUP BY clause that random rules must skip, or -1
	exclGroup bool   // whether that clause is GROUP BY (else ORDER BY)
}

// statementEdits appends the edits for one statement to edits.
func statementEdits(edits []edit, st sqlscan.Stmt, opts Options) []edit {
	w := walker{src: st.Text, base: st.Start, opts: opts, edits: edits, nameDepth: -1, exclDepth: -1,
		inList: []bool{false}}
	w.tokenize()
	if w.opts.Random && w.compoundOrdersByRandom() {
		w.opts.Random = false
	}
	for k := 0; k < len(w.toks); k++ {
		switch w.toks[k].Kind {
		case sqlscan.LParen:
			w.depth++
			w.inList = append(w.inList, false)
			if w.nameListParen(k) {
				w.nameDepth = w.depth
			}
		case sqlscan.RParen:
			if w.nameDepth == w.depth {
				w.nameDepth = -1
			}
			w.depth--
			if len(w.inList) > 1 {
				w.inList = w.inList[:len(w.inList)-1]
			}
			if w.exclDepth > w.depth {
				w.exclDepth = -1 // the ')' closes the level the clause belongs to
			}
		case sqlscan.Ident:
			w.clauses(k)
			k = w.rules(k)
		}
	}
	return w.edits
}

// tokenize collects the significant tokens and pairs up parentheses.
func (w *walker) tokenize() {
	guess := len(w.src)/4 + 8 // typical SQL has a significant token every 4-6 bytes
	w.toks = make([]sqlscan.Token, 0, guess)
	w.match = make([]int, 0, guess)
	var open []int // indexes of the '(' not yet closed
	s := sqlscan.NewScanner(w.src)
	for t := s.Next(); t.Kind != sqlscan.EOF; t = s.Next() {
		if !t.Significant() {
			continue
		}
		i := len(w.toks)
		w.toks = append(w.toks, t)
		w.match = append(w.match, -1)
		switch t.Kind {
		case sqlscan.LParen:
			open = append(open, i)
		case sqlscan.RParen:
			if n := len(open); n > 0 {
				w.match[open[n-1]] = i
				open = open[:n-1]
			}
		}
	}
}

func (w *walker) is(k int, kw string) bool {
	return k >= 0 && k < len(w.toks) && w.toks[k].IsKeyword(w.src, kw)
}

func (w *walker) kind(k int) sqlscan.TokenKind {
	if k < 0 || k >= len(w.toks) {
		return sqlscan.EOF
	}
	return w.toks[k].Kind
}

// clauses tracks the clauses that change what a rule may do: ORDER BY and GROUP BY (where a literal
// would become a column index), and SET and FROM lists (whose items start with column or table names).
func (w *walker) clauses(k int) {
	switch {
	case w.is(k, "ORDER") && w.is(k+1, "BY"):
		if w.exclDepth < 0 || (w.exclGroup && w.exclDepth == w.depth) {
			w.exclDepth, w.exclGroup = w.depth, false
		}
	case w.is(k, "GROUP") && w.is(k+1, "BY"):
		if w.exclDepth < 0 {
			w.exclDepth, w.exclGroup = w.depth, true
		}
	case w.exclDepth == w.depth && w.is(k, "LIMIT"):
		w.exclDepth = -1
	case w.exclDepth == w.depth && w.exclGroup && (w.is(k, "HAVING") || w.is(k, "WINDOW") ||
		w.is(k, "UNION") || w.is(k, "INTERSECT") || w.is(k, "EXCEPT")):
		w.exclDepth = -1
	}
	switch {
	case w.is(k, "SET") || w.is(k, "FROM"):
		w.inList[len(w.inList)-1] = true
	case w.is(k, "WHERE") || w.is(k, "GROUP") || w.is(k, "HAVING") ||
		w.is(k, "WINDOW") || w.is(k, "ORDER") || w.is(k, "LIMIT") || w.is(k, "RETURNING") ||
		w.is(k, "UNION") || w.is(k, "INTERSECT") || w.is(k, "EXCEPT"):
		w.inList[len(w.inList)-1] = false
	}
}

// compoundOrdersByRandom reports whether a compound SELECT (UNION, INTERSECT, EXCEPT) has a random call in
// its ORDER BY. There every ORDER BY term must be identical to a result column, so rewriting the column
// while the ORDER BY term is left alone would make the statement fail. The random rules then leave the
// whole statement alone: rare, and the apply side's PRNG handles it.
func (w *walker) compoundOrdersByRandom() bool {
	compound := []bool{false} // per open paren level: a compound operator was seen
	order := -1               // level of the ORDER BY of a compound SELECT being scanned, or -1
	for k, t := range w.toks {
		switch t.Kind {
		case sqlscan.LParen:
			compound = append(compound, false)
		case sqlscan.RParen:
			if len(compound) > 1 {
				compound = compound[:len(compound)-1]
			}
			if order >= len(compound) {
				order = -1
			}
		case sqlscan.Ident:
			level := len(compound) - 1
			switch {
			case w.is(k, "UNION") || w.is(k, "INTERSECT") || w.is(k, "EXCEPT"):
				compound[level] = true
			case w.is(k, "ORDER") && w.is(k+1, "BY") && compound[level] && order < 0:
				order = level
			case order == level && w.is(k, "LIMIT"):
				order = -1
			case order >= 0 && (w.is(k, "RANDOM") || w.is(k, "RANDOMBLOB")) && w.kind(k+1) == sqlscan.LParen:
				return true
			}
		}
	}
	return false
}
