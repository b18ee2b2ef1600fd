package sqlscan

import "strings"

// Complete reports whether src ends at the end of a statement, as sqlite3_complete() decides: its last
// significant token is a ';' that closes a statement (not one inside a trigger body), and no string,
// quoted identifier or block comment is left open. An interactive client reads lines until this holds.
func Complete(src string) bool {
	state := uint8(stStart)
	ended := false
	for i := 0; i < len(src); {
		kind, next := lex(src, i)
		text := src[i:next]
		switch kind {
		case Space:
		case Comment:
			if strings.HasPrefix(text, "/*") && (len(text) < 4 || !strings.HasSuffix(text, "*/")) {
				return false // an open block comment swallows whatever follows
			}
		case Semicolon:
			state = transitions[state][tkSemi]
			ended = state == stStart
		default:
			state = transitions[state][completeClass(text, kind)]
			ended = false
		}
		i = next
	}
	return ended
}
