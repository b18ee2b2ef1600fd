package sqlscan

// Info describes one statement.
type Info struct {
	Kind      Kind // kind of the statement; for WITH, the kind of the statement after the CTE list
	Returning bool // an INSERT/UPDATE/DELETE/REPLACE (also after WITH) with RETURNING at paren depth 0
}

// Analyze classifies ONE statement (use Split first for multi-statement strings): anything after its first
// ';' is ignored, while empty statements before it are skipped. It makes a single pass and never allocates.
func Analyze(stmt string) Info {
	t := nextSignificant(stmt, 0)
	for t.Kind == Semicolon {
		t = nextSignificant(stmt, t.End)
	}
	if t.Kind != Ident {
		return Info{}
	}
	kind, with := leadingKind(t.Text(stmt))
	switch {
	case with:
		kind, t = kindAfterWith(stmt, t.End)
	case kind == Rollback:
		return Info{Kind: rollbackKind(stmt, t.End)}
	}
	switch kind {
	case Insert, Update, Delete, Replace:
		return Info{Kind: kind, Returning: hasReturning(stmt, t.End)}
	}
	return Info{Kind: kind}
}

// kindAfterWith skips a CTE list (WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED] (…), …) and
// classifies the statement that follows it, returning that statement's first token. The statement starts
// at the first depth-0 token after a closing parenthesis that is neither ',' (another CTE) nor AS (the
// parenthesis closed a column list).
func kindAfterWith(stmt string, i int) (Kind, Token) {
	depth := 0
	afterClose := false
	for {
		t := nextSignificant(stmt, i)
		switch t.Kind {
		case EOF, Semicolon:
			return Other, t
		case LParen:
			depth++
		case RParen:
			depth--
		}
		if afterClose && depth == 0 && t.Kind != Comma && !t.IsKeyword(stmt, "AS") {
			if t.Kind != Ident {
				return Other, t
			}
			switch k, _ := leadingKind(t.Text(stmt)); k {
			case Select, Insert, Update, Delete, Replace, Values:
				return k, t
			}
			return Other, t
		}
		afterClose = t.Kind == RParen && depth == 0
		i = t.End
	}
}

// rollbackKind tells "ROLLBACK [TRANSACTION]" from "ROLLBACK [TRANSACTION] TO …", given the offset after
// ROLLBACK.
func rollbackKind(stmt string, i int) Kind {
	t := nextSignificant(stmt, i)
	if t.IsKeyword(stmt, "TRANSACTION") {
		t = nextSignificant(stmt, t.End)
	}
	if t.IsKeyword(stmt, "TO") {
		return RollbackTo
	}
	return Rollback
}

// hasReturning reports whether a bare RETURNING keyword occurs at paren depth 0 before the statement ends.
// RETURNING is reserved, so as a bare identifier it can only start the clause.
func hasReturning(stmt string, i int) bool {
	depth := 0
	for i < len(stmt) {
		kind, end := lex(stmt, i)
		switch kind {
		case Semicolon:
			return false
		case LParen:
			depth++
		case RParen:
			depth--
		case Ident:
			if depth == 0 && end-i == len("RETURNING") && equalFoldUpper(stmt[i:end], "RETURNING") {
				return true
			}
		}
		i = end
	}
	return false
}
