package sqlscan

// Character classes, as SQLite's tokenizer defines them (tokenize.c and the ctype map in global.c). They
// are kept in one table so the scanner's hot loops cost a single lookup per byte.
const (
	cIdent = 1 << iota // may continue an identifier: ASCII letters, digits, '_', '$', any byte >= 0x80
	cSpace             // may continue whitespace (sqlite3Isspace); it starts only at ' ' \t \n \f \r, not \v
	cDigit
	cHex
	cWordStart // surely starts an identifier: cIdent minus digits, '$', x/X (blobs), 0xEF (BOM)
)

var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '$', c >= 0x80:
			t[c] |= cIdent
		case c >= '0' && c <= '9':
			t[c] |= cIdent | cDigit
		}
		if t[c]&cIdent != 0 && !(c >= '0' && c <= '9') && c != '$' && c != 'x' && c != 'X' && c != 0xEF {
			t[c] |= cWordStart
		}
		if (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') {
			t[c] |= cHex
		}
		if c >= '\t' && c <= '\r' || c == ' ' {
			t[c] |= cSpace
		}
	}
	return t
}()

func isIdentChar(c byte) bool { return charClass[c]&cIdent != 0 }
func isDigit(c byte) bool     { return charClass[c]&cDigit != 0 }
func isHex(c byte) bool       { return charClass[c]&cHex != 0 }
func isSpace(c byte) bool     { return charClass[c]&cSpace != 0 }

// IsIdentChar reports whether c can continue a bare identifier, so callers that splice text into SQL can
// tell whether two pieces would fuse into one token.
func IsIdentChar(c byte) bool { return isIdentChar(c) }

// equalFoldUpper reports whether s equals kw ignoring ASCII case; kw must be upper-case. Only ASCII folds,
// exactly like SQLite's keyword matching (strings.EqualFold would also fold e.g. the Kelvin sign to K).
func equalFoldUpper(s, kw string) bool {
	if len(s) != len(kw) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != kw[i] {
			return false
		}
	}
	return true
}
