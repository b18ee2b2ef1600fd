package sqlscan

import (
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"", "SELECT 1", "INSERT INTO t VALUES(?, :a, @b, $c::d(e), #f, ?2); SELECT 'it''s'",
	`SELECT "a""b", [x y], x'0A', 1e10, .5, 0x1F, 1_000 -- c`, "/* unterminated", "/*", "x'A", "'open",
	"CREATE TRIGGER t BEGIN UPDATE b SET x = CASE WHEN 1 THEN 2 END; END; SELECT 1",
	"EXPLAIN QUERY PLAN CREATE TEMP TRIGGER t BEGIN SELECT 1; END ; ;;",
	"WITH x(a) AS (SELECT 1) INSERT INTO t SELECT * FROM x RETURNING *", "PRAGMA main.journal_mode = WAL",
	"\xef\xbb\xbfSELECT\v1\x00\xff", "$a(x y) ->> <> !",
}

func FuzzScanner(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		checkReassembles(t, src)
		Analyze(src)
		Pragma(src)
		for _, tk := range scanAll(src) {
			for _, kw := range []string{"SELECT", "END", "K"} {
				tk.IsKeyword(src, kw)
			}
			if tk.Kind == String || tk.Kind == QuotedIdent {
				Unquote(tk.Text(src))
			}
		}
	})
}

func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		stmts := Split(src)
		prev := 0
		for i, st := range stmts {
			if st.Start < prev || st.End <= st.Start || st.End > len(src) || src[st.Start:st.End] != st.Text {
				t.Fatalf("statement %d has bad span %d-%d (previous ended at %d): %+v", i, st.Start, st.End, prev, st)
			}
			// Between statements there is only whitespace, comments and semicolons.
			onlyTrivia(t, src[prev:st.Start], true)
			// A statement is trimmed to significant tokens.
			toks := scanAll(st.Text)
			if !toks[0].Significant() || !toks[len(toks)-1].Significant() {
				t.Fatalf("statement %d %q is not trimmed", i, st.Text)
			}
			// Splitting a statement again yields exactly that statement.
			again := Split(st.Text)
			if len(again) != 1 || again[0].Text != st.Text {
				t.Fatalf("statement %d %q re-splits into %q", i, st.Text, texts(again))
			}
			Analyze(st.Text)
			Pragma(st.Text)
			prev = st.End
		}
		onlyTrivia(t, src[prev:], true)
		if len(stmts) == 0 {
			onlyTrivia(t, src, true)
		}
	})
}

// onlyTrivia fails unless s consists of whitespace, comments and (if semis) semicolons.
func onlyTrivia(t *testing.T, s string, semis bool) {
	t.Helper()
	for _, tk := range scanAll(s) {
		if tk.Significant() && !(semis && tk.Kind == Semicolon) {
			t.Fatalf("%q between statements contains %v %q", s, tk.Kind, tk.Text(s))
		}
	}
}

func TestSplitTrivia(t *testing.T) {
	// A "-- comment" at the end of a statement must not be inside Text, or "Text + ';'" would be commented out.
	st := Split("SELECT 1 -- note")
	if len(st) != 1 || strings.Contains(st[0].Text, "--") {
		t.Fatalf("got %q", texts(st))
	}
}
