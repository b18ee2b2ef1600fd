package sqlscan

// TokenKind is the lexical class of a token.
type TokenKind uint8

const (
	EOF         TokenKind = iota // end of input; Start == End == len(src)
	Space                        // whitespace, including a UTF-8 byte-order mark at a token boundary
	Comment                      // "--" to end of line (newline excluded), or "/* */" (may be unterminated)
	Ident                        // bare identifier or keyword
	QuotedIdent                  // "x", `x` or [x]
	String                       // 'x' with '' as the escaped quote
	Blob                         // x'0A' or X'0A'
	Number                       // integer, real or hex literal (with '_' digit separators as SQLite allows)
	Variable                     // ?, ?NNN, :name, @name, #name, $name (with ::tail and (…) forms)
	Semicolon                    // ;
	LParen                       // (
	RParen                       // )
	Comma                        // ,
	Dot                          // .
	Operator                     // every other operator: || -> ->> <= >= == != <> << >> = < > + - * / % & | ~
	Illegal                      // text SQLite rejects as a token
)

var tokenKindNames = [...]string{
	EOF: "EOF", Space: "Space", Comment: "Comment", Ident: "Ident", QuotedIdent: "QuotedIdent",
	String: "String", Blob: "Blob", Number: "Number", Variable: "Variable", Semicolon: "Semicolon",
	LParen: "LParen", RParen: "RParen", Comma: "Comma", Dot: "Dot", Operator: "Operator", Illegal: "Illegal",
}

func (k TokenKind) String() string {
	if int(k) < len(tokenKindNames) {
		return tokenKindNames[k]
	}
	return "TokenKind(?)"
}

// Token is one lexical token: its kind and its byte span [Start, End) in the source.
type Token struct {
	Kind       TokenKind
	Start, End int
}

// Text returns the token's source text, or "" if the span does not fit src (a token from another string).
func (t Token) Text(src string) string {
	if t.Start < 0 || t.Start > t.End || t.End > len(src) {
		return ""
	}
	return src[t.Start:t.End]
}

// IsKeyword reports whether t is the bare identifier kw, compared ignoring ASCII case (as SQLite does).
// kw must be upper-case; quoted identifiers never match, since quoting is how SQL turns a keyword into a name.
func (t Token) IsKeyword(src, kw string) bool {
	return t.Kind == Ident && t.End-t.Start == len(kw) && equalFoldUpper(t.Text(src), kw)
}

// Significant reports whether the token matters to the grammar, i.e. is neither whitespace nor a comment.
func (t Token) Significant() bool { return t.Kind != Space && t.Kind != Comment }
