package sqlscan

import "strings"

// Pragma parses "PRAGMA [schema.]name [= value | (value)]". ok is false if stmt is not a PRAGMA statement
// with a name. setting is true when '=' or '(' follows the name (a value is being given). Names are
// returned as written; quoted names ("x", [x], `x`, 'x', which SQLite all accepts here) are unquoted.
// Compare them ignoring ASCII case, as SQLite does. Empty statements before the PRAGMA are skipped.
func Pragma(stmt string) (schema, name string, setting bool, ok bool) {
	t := nextSignificant(stmt, 0)
	for t.Kind == Semicolon {
		t = nextSignificant(stmt, t.End)
	}
	if !t.IsKeyword(stmt, "PRAGMA") {
		return "", "", false, false
	}
	t = nextSignificant(stmt, t.End)
	name, ok = pragmaName(stmt, t)
	if !ok {
		return "", "", false, false
	}
	t = nextSignificant(stmt, t.End)
	if t.Kind == Dot {
		t = nextSignificant(stmt, t.End)
		schema = name
		if name, ok = pragmaName(stmt, t); !ok {
			return "", "", false, false
		}
		t = nextSignificant(stmt, t.End)
	}
	switch {
	case t.Kind == LParen:
		setting = true
	case t.Kind == Operator:
		op := t.Text(stmt)
		setting = op == "=" || op == "=="
	}
	return schema, name, setting, true
}

// pragmaName returns the unquoted name a token spells, if it can name a pragma or schema.
func pragmaName(stmt string, t Token) (string, bool) {
	text := t.Text(stmt)
	switch t.Kind {
	case Ident:
		return text, true
	case String, QuotedIdent:
		return Unquote(text), true
	}
	return "", false
}

// Unquote returns the name inside a quoted identifier or string token ("a""b" -> a"b, [x] -> x); any other
// text is returned unchanged. An unterminated token loses only its opening quote.
func Unquote(text string) string {
	if len(text) == 0 {
		return text
	}
	open := text[0]
	var close byte
	switch open {
	case '\'', '"', '`':
		close = open
	case '[':
		close = ']'
	default:
		return text
	}
	body := text[1:]
	if len(body) > 0 && body[len(body)-1] == close {
		body = body[:len(body)-1]
	}
	if open == '[' {
		return body
	}
	doubled := text[:1] + text[:1]
	if !strings.Contains(body, doubled) {
		return body
	}
	return strings.ReplaceAll(body, doubled, text[:1])
}
