package sqlscan

import (
	"strings"
	"testing"
)

// tok is an expected token: its kind and text.
type tok struct {
	kind TokenKind
	text string
}

func scanAll(src string) []Token {
	var out []Token
	s := NewScanner(src)
	for t := s.Next(); t.Kind != EOF; t = s.Next() {
		out = append(out, t)
	}
	return out
}

func TestScannerTokens(t *testing.T) {
	tests := []struct {
		src  string
		want []tok
	}{
		{"", nil},
		{" \t\n\f\r", []tok{{Space, " \t\n\f\r"}}},
		{"\v", []tok{{Illegal, "\v"}}},                                  // SQLite does not start whitespace with \v...
		{" \v ", []tok{{Space, " \v "}}},                                // ...but continues it
		{"\xef\xbb\xbfa", []tok{{Space, "\xef\xbb\xbf"}, {Ident, "a"}}}, // byte-order mark
		{"-- c", []tok{{Comment, "-- c"}}},                              // comment at EOF
		{"--c\nx", []tok{{Comment, "--c"}, {Space, "\n"}, {Ident, "x"}}},
		{"/* a */x", []tok{{Comment, "/* a */"}, {Ident, "x"}}},
		{"/**/", []tok{{Comment, "/**/"}}},
		{"/*/ x", []tok{{Comment, "/*/ x"}}}, // the '*' of "/*" does not close it
		{"/* unterminated", []tok{{Comment, "/* unterminated"}}},
		{"/*", []tok{{Operator, "/"}, {Operator, "*"}}}, // SQLite needs a byte after "/*"
		{"abc _x1 a$b", []tok{{Ident, "abc"}, {Space, " "}, {Ident, "_x1"}, {Space, " "}, {Ident, "a$b"}}},
		{"SeLeCt", []tok{{Ident, "SeLeCt"}}},
		{"naïve 表 é1", []tok{{Ident, "naïve"}, {Space, " "}, {Ident, "表"}, {Space, " "}, {Ident, "é1"}}},
		{"x y1 X", []tok{{Ident, "x"}, {Space, " "}, {Ident, "y1"}, {Space, " "}, {Ident, "X"}}},
		{`"a""b"`, []tok{{QuotedIdent, `"a""b"`}}},
		{"`a``b`", []tok{{QuotedIdent, "`a``b`"}}},
		{"[x y]", []tok{{QuotedIdent, "[x y]"}}},
		{"[a]]", []tok{{QuotedIdent, "[a]"}, {Illegal, "]"}}},
		{`"open`, []tok{{QuotedIdent, `"open`}}},
		{"[open", []tok{{QuotedIdent, "[open"}}},
		{"'it''s'", []tok{{String, "'it''s'"}}},
		{"''", []tok{{String, "''"}}},
		{"'a;b'", []tok{{String, "'a;b'"}}},
		{"'open", []tok{{String, "'open"}}},
		{"'x''", []tok{{String, "'x''"}}},
		{"x'0A'", []tok{{Blob, "x'0A'"}}},
		{"X'ab12'", []tok{{Blob, "X'ab12'"}}},
		{"x''", []tok{{Blob, "x''"}}},
		{"x'A'", []tok{{Illegal, "x'A'"}}}, // odd length
		{"x'zz' 1", []tok{{Illegal, "x'zz'"}, {Space, " "}, {Number, "1"}}},
		{"x'0A", []tok{{Illegal, "x'0A"}}},
		{"1 1e10 .5 1.5 0x1F 0XaB 1_000 1e+5 2E-3 5.", []tok{
			{Number, "1"}, {Space, " "}, {Number, "1e10"}, {Space, " "}, {Number, ".5"}, {Space, " "},
			{Number, "1.5"}, {Space, " "}, {Number, "0x1F"}, {Space, " "}, {Number, "0XaB"}, {Space, " "},
			{Number, "1_000"}, {Space, " "}, {Number, "1e+5"}, {Space, " "}, {Number, "2E-3"}, {Space, " "},
			{Number, "5."}}},
		{"1e", []tok{{Illegal, "1e"}}},
		{"1e+", []tok{{Illegal, "1e"}, {Operator, "+"}}},
		{"12abc", []tok{{Illegal, "12abc"}}},
		{"0x", []tok{{Illegal, "0x"}}},
		{"1.2.3", []tok{{Number, "1.2"}, {Number, ".3"}}},
		{"a.b", []tok{{Ident, "a"}, {Dot, "."}, {Ident, "b"}}},
		{"? ?1 ?12", []tok{{Variable, "?"}, {Space, " "}, {Variable, "?1"}, {Space, " "}, {Variable, "?12"}}},
		{":a @a $a #a", []tok{{Variable, ":a"}, {Space, " "}, {Variable, "@a"}, {Space, " "}, {Variable, "$a"},
			{Space, " "}, {Variable, "#a"}}},
		{"$a::b::c $a(x) $a(x y)", []tok{{Variable, "$a::b::c"}, {Space, " "}, {Variable, "$a(x)"}, {Space, " "},
			{Illegal, "$a(x"}, {Space, " "}, {Ident, "y"}, {RParen, ")"}}},
		{": $", []tok{{Illegal, ":"}, {Space, " "}, {Illegal, "$"}}},
		{"$(", []tok{{Illegal, "$"}, {LParen, "("}}},
		{";(),.", []tok{{Semicolon, ";"}, {LParen, "("}, {RParen, ")"}, {Comma, ","}, {Dot, "."}}},
		{"|| -> ->> <= >= == != <> << >> = < > + - * / % & | ~", []tok{
			{Operator, "||"}, {Space, " "}, {Operator, "->"}, {Space, " "}, {Operator, "->>"}, {Space, " "},
			{Operator, "<="}, {Space, " "}, {Operator, ">="}, {Space, " "}, {Operator, "=="}, {Space, " "},
			{Operator, "!="}, {Space, " "}, {Operator, "<>"}, {Space, " "}, {Operator, "<<"}, {Space, " "},
			{Operator, ">>"}, {Space, " "}, {Operator, "="}, {Space, " "}, {Operator, "<"}, {Space, " "},
			{Operator, ">"}, {Space, " "}, {Operator, "+"}, {Space, " "}, {Operator, "-"}, {Space, " "},
			{Operator, "*"}, {Space, " "}, {Operator, "/"}, {Space, " "}, {Operator, "%"}, {Space, " "},
			{Operator, "&"}, {Space, " "}, {Operator, "|"}, {Space, " "}, {Operator, "~"}}},
		{"a-b", []tok{{Ident, "a"}, {Operator, "-"}, {Ident, "b"}}},
		{"! ^ \\ { } \x00 \x7f", []tok{{Illegal, "!"}, {Space, " "}, {Illegal, "^"}, {Space, " "}, {Illegal, "\\"},
			{Space, " "}, {Illegal, "{"}, {Space, " "}, {Illegal, "}"}, {Space, " "}, {Illegal, "\x00"},
			{Space, " "}, {Illegal, "\x7f"}}},
		{"\xff\xfe", []tok{{Ident, "\xff\xfe"}}}, // invalid UTF-8 is identifier text to SQLite
		{"\xef\xbb", []tok{{Ident, "\xef\xbb"}}},
	}
	for _, tt := range tests {
		got := scanAll(tt.src)
		var gotTok []tok
		for _, g := range got {
			gotTok = append(gotTok, tok{g.Kind, g.Text(tt.src)})
		}
		if len(gotTok) != len(tt.want) {
			t.Errorf("%q: got %v, want %v", tt.src, gotTok, tt.want)
			continue
		}
		for i := range gotTok {
			if gotTok[i] != tt.want[i] {
				t.Errorf("%q: token %d = %v, want %v (all: %v)", tt.src, i, gotTok[i], tt.want[i], gotTok)
				break
			}
		}
		checkReassembles(t, tt.src)
	}
}

// checkReassembles verifies that the tokens tile src exactly, and that EOF then repeats.
func checkReassembles(t *testing.T, src string) {
	t.Helper()
	var b strings.Builder
	s := NewScanner(src)
	prev := 0
	for i := 0; ; i++ {
		tk := s.Next()
		if tk.Start != prev {
			t.Fatalf("%q: token %d starts at %d, previous ended at %d", src, i, tk.Start, prev)
		}
		if tk.Kind == EOF {
			if tk.Start != len(src) || tk.End != len(src) {
				t.Fatalf("%q: EOF at %d-%d", src, tk.Start, tk.End)
			}
			break
		}
		if tk.End <= tk.Start {
			t.Fatalf("%q: empty token %v", src, tk)
		}
		b.WriteString(tk.Text(src))
		prev = tk.End
		if i > len(src) {
			t.Fatalf("%q: more tokens than bytes", src)
		}
	}
	if b.String() != src {
		t.Fatalf("tokens reassemble to %q, want %q", b.String(), src)
	}
	for range 3 {
		if tk := s.Next(); tk.Kind != EOF || tk.Start != len(src) {
			t.Fatalf("%q: after EOF got %v", src, tk)
		}
	}
}

func TestScannerZeroValue(t *testing.T) {
	var s Scanner
	if tk := s.Next(); tk.Kind != EOF {
		t.Fatalf("zero Scanner returned %v", tk)
	}
}

func TestTokenText(t *testing.T) {
	src := "abc"
	for _, tk := range []Token{{Ident, -1, 2}, {Ident, 2, 1}, {Ident, 0, 4}} {
		if got := tk.Text(src); got != "" {
			t.Errorf("%v.Text = %q, want empty for an out-of-range span", tk, got)
		}
	}
	if got := (Token{Ident, 1, 3}).Text(src); got != "bc" {
		t.Errorf("Text = %q", got)
	}
}

func TestIsKeyword(t *testing.T) {
	src := `select "SELECT" SELECTs sElEcT K`
	toks := scanAll(src)
	want := map[int]bool{0: true, 2: false, 4: false, 6: true}
	for i, w := range want {
		if got := toks[i].IsKeyword(src, "SELECT"); got != w {
			t.Errorf("token %d %q IsKeyword(SELECT) = %v, want %v", i, toks[i].Text(src), got, w)
		}
	}
	// Only ASCII folds: the Kelvin sign is not K (strings.EqualFold would say it is).
	kelvin := "\u212a"
	if (Token{Ident, 0, len(kelvin)}).IsKeyword(kelvin, "K") {
		t.Error("Kelvin sign matched keyword K")
	}
	if !toks[8].IsKeyword(src, "K") {
		t.Error("K did not match K")
	}
}

func TestKindStrings(t *testing.T) {
	if Illegal.String() != "Illegal" || TokenKind(200).String() != "TokenKind(?)" {
		t.Error("TokenKind.String")
	}
	if Explain.String() != "Explain" || AnalyzeStmt.String() != "Analyze" || Kind(200).String() != "Kind(?)" {
		t.Error("Kind.String")
	}
}
