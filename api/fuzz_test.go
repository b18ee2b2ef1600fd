package api

import (
	"net/url"
	"testing"
)

// FuzzParseStatements feeds arbitrary bodies to the request parser: it must never panic, and what it
// accepts must be well formed (every statement has SQL; byte parameters came from valid arrays).
func FuzzParseStatements(f *testing.F) {
	for _, seed := range []string{
		`["CREATE TABLE foo (id INTEGER PRIMARY KEY)"]`,
		`[["INSERT INTO foo VALUES(?, ?)", 1, "x", 1.5, true, null, [1,2,3], "x'0A'"]]`,
		`[["SELECT :a", {"a": 1, "b": [255]}]]`,
		`[[]]`, `[[1]]`, `{}`, `[`, `[1e400]`, `[["x", 1e400, 12345678901234567890]]`, `[""]`,
		`[["x", {"a": {"b": 1}}]]`, `[["x", [256]]]`, `[["x", [-1]]]`, `[["x", [1.5]]]`,
	} {
		f.Add([]byte(seed), false)
	}
	f.Add([]byte("SELECT 1"), true)
	f.Fuzz(func(t *testing.T, body []byte, plain bool) {
		stmts, err := parseStatements(body, plain)
		if err != nil {
			return
		}
		if plain && len(stmts) != 1 {
			t.Fatalf("plain text gave %d statements", len(stmts))
		}
		for _, st := range stmts {
			if st == nil || (!plain && st.Sql == "") {
				t.Fatalf("accepted an empty statement from %q", body)
			}
		}
	})
}

// FuzzParseParams feeds arbitrary query strings to the parameter parser: it must never panic, and the
// timeout it yields is never zero or negative when none was given.
func FuzzParseParams(f *testing.F) {
	for _, seed := range []string{"", "pretty&timings", "timeout=1s&q=SELECT+1", "freshness_strict",
		"freshness=1h&freshness_strict", "retries=x", "q=", "level=STRONG&min_index=18446744073709551615",
		"min_index=-1", "db_timeout=1%", "%zz", "q=%00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u := &url.URL{Path: "/db/query", RawQuery: raw}
		p, err := parseParams(u)
		if err != nil {
			return
		}
		if _, ok := u.Query()["timeout"]; !ok && p.timeout != defaultTimeout {
			t.Fatalf("default timeout %v", p.timeout)
		}
	})
}
