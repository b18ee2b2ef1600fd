package sqlscan

import "strings"

// Scanner yields the tokens of a source string in order. The zero value scans the empty string.
type Scanner struct {
	src string
	pos int
}

// NewScanner returns a scanner positioned at the start of src.
func NewScanner(src string) *Scanner { return &Scanner{src: src} }

// Next returns the next token; at the end of input it returns an EOF token, on every call.
func (s *Scanner) Next() Token {
	if s.pos >= len(s.src) {
		return Token{Kind: EOF, Start: len(s.src), End: len(s.src)}
	}
	kind, end := lex(s.src, s.pos)
	t := Token{Kind: kind, Start: s.pos, End: end}
	s.pos = end
	return t
}

// nextSignificant returns the first token at or after i that is not whitespace or a comment.
func nextSignificant(src string, i int) Token {
	for i < len(src) {
		kind, end := lex(src, i)
		if kind != Space && kind != Comment {
			return Token{Kind: kind, Start: i, End: end}
		}
		i = end
	}
	return Token{Kind: EOF, Start: len(src), End: len(src)}
}

// lex scans the token starting at src[i] (i < len(src)) and returns its kind and end offset, which is
// always > i. Token boundaries follow SQLite's sqlite3GetToken, except that unterminated strings and quoted
// identifiers keep their kind (SQLite calls them illegal) and a NUL byte is an ordinary illegal byte.
func lex(src string, i int) (TokenKind, int) {
	c := src[i]
	if charClass[c]&cWordStart != 0 { // the most common token first
		return Ident, identEnd(src, i+1)
	}
	switch c {
	case ' ', '\t', '\n', '\f', '\r':
		j := i + 1
		for j < len(src) && isSpace(src[j]) {
			j++
		}
		return Space, j
	case '-':
		if at(src, i+1) == '-' {
			if k := strings.IndexByte(src[i+2:], '\n'); k >= 0 {
				return Comment, i + 2 + k
			}
			return Comment, len(src)
		}
		if at(src, i+1) == '>' {
			if at(src, i+2) == '>' {
				return Operator, i + 3 // ->>
			}
			return Operator, i + 2 // ->
		}
		return Operator, i + 1
	case '/':
		// "/*" needs at least one more byte to be a comment: SQLite reads a final "/*" as '/' then '*'.
		if at(src, i+1) != '*' || i+2 >= len(src) {
			return Operator, i + 1
		}
		if k := strings.Index(src[i+2:], "*/"); k >= 0 {
			return Comment, i + 2 + k + 2
		}
		return Comment, len(src)
	case '(':
		return LParen, i + 1
	case ')':
		return RParen, i + 1
	case ';':
		return Semicolon, i + 1
	case ',':
		return Comma, i + 1
	case '+', '*', '%', '&', '~':
		return Operator, i + 1
	case '=':
		if at(src, i+1) == '=' {
			return Operator, i + 2
		}
		return Operator, i + 1
	case '<':
		switch at(src, i+1) {
		case '=', '>', '<':
			return Operator, i + 2
		}
		return Operator, i + 1
	case '>':
		switch at(src, i+1) {
		case '=', '>':
			return Operator, i + 2
		}
		return Operator, i + 1
	case '!':
		if at(src, i+1) == '=' {
			return Operator, i + 2
		}
		return Illegal, i + 1
	case '|':
		if at(src, i+1) == '|' {
			return Operator, i + 2
		}
		return Operator, i + 1
	case '\'':
		return String, quoted(src, i, '\'')
	case '"', '`':
		return QuotedIdent, quoted(src, i, c)
	case '[':
		if k := strings.IndexByte(src[i+1:], ']'); k >= 0 {
			return QuotedIdent, i + 1 + k + 1
		}
		return QuotedIdent, len(src)
	case '.':
		if isDigit(at(src, i+1)) {
			return number(src, i)
		}
		return Dot, i + 1
	case '?':
		j := i + 1
		for j < len(src) && isDigit(src[j]) {
			j++
		}
		return Variable, j
	case '$', '@', '#', ':':
		return variable(src, i)
	case 'x', 'X':
		if at(src, i+1) == '\'' {
			return blob(src, i)
		}
		return Ident, identEnd(src, i+1)
	case 0xEF:
		// A UTF-8 byte-order mark is whitespace where a token could start; elsewhere it is identifier text.
		if at(src, i+1) == 0xBB && at(src, i+2) == 0xBF {
			return Space, i + 3
		}
		return Ident, identEnd(src, i+1)
	}
	if isDigit(c) {
		return number(src, i)
	}
	return Illegal, i + 1
}

// at returns src[i], or 0 past the end (SQLite reads its terminating NUL the same way).
func at(src string, i int) byte {
	if i < len(src) {
		return src[i]
	}
	return 0
}

func identEnd(src string, j int) int {
	for j < len(src) && isIdentChar(src[j]) {
		j++
	}
	return j
}

// quoted returns the end of a quoted token opened by delim at src[i]; a doubled delimiter is an escaped one.
// Unterminated, it runs to the end of input.
func quoted(src string, i int, delim byte) int {
	for j := i + 1; j < len(src); j++ {
		if src[j] == delim {
			if at(src, j+1) != delim {
				return j + 1
			}
			j++
		}
	}
	return len(src)
}

// number scans a numeric literal starting with a digit or '.'. Identifier characters glued to a number make
// the whole run illegal ("12abc"), as in SQLite.
func number(src string, i int) (TokenKind, int) {
	var j int
	if src[i] == '0' && (at(src, i+1) == 'x' || at(src, i+1) == 'X') && isHex(at(src, i+2)) {
		j = digitsEnd(src, i+3, cHex)
	} else {
		j = digitsEnd(src, i, cDigit)
		if at(src, j) == '.' {
			j = digitsEnd(src, j+1, cDigit)
		}
		if e := at(src, j); e == 'e' || e == 'E' {
			if isDigit(at(src, j+1)) || ((at(src, j+1) == '+' || at(src, j+1) == '-') && isDigit(at(src, j+2))) {
				j = digitsEnd(src, j+2, cDigit)
			}
		}
	}
	if j < len(src) && isIdentChar(src[j]) {
		return Illegal, identEnd(src, j)
	}
	return Number, j
}

// digitsEnd skips digits of the given class and '_' separators (SQLite validates their placement later).
func digitsEnd(src string, j int, class uint8) int {
	for j < len(src) && (charClass[src[j]]&class != 0 || src[j] == '_') {
		j++
	}
	return j
}

// variable scans :name, @name, #name and $name, including Tcl-style "$a::b" and "$a(index)" forms.
func variable(src string, i int) (TokenKind, int) {
	n := 0 // identifier characters seen; a bare prefix is illegal
	j := i + 1
	for j < len(src) {
		c := src[j]
		switch {
		case isIdentChar(c):
			n++
			j++
			continue
		case c == '(' && n > 0:
			j++
			for j < len(src) && src[j] != 0 && !isSpace(src[j]) && src[j] != ')' {
				j++
			}
			if at(src, j) == ')' {
				return Variable, j + 1
			}
			return Illegal, j
		case c == ':' && at(src, j+1) == ':':
			j += 2
			continue
		}
		break
	}
	if n == 0 {
		return Illegal, j
	}
	return Variable, j
}

// blob scans x'…'. Odd-length or non-hex content is illegal and, like SQLite, runs to the next quote.
func blob(src string, i int) (TokenKind, int) {
	j := i + 2
	for j < len(src) && isHex(src[j]) {
		j++
	}
	if j < len(src) && src[j] == '\'' && (j-i)%2 == 0 {
		return Blob, j + 1
	}
	if k := strings.IndexByte(src[j:], '\''); k >= 0 {
		return Illegal, j + k + 1
	}
	return Illegal, len(src)
}
