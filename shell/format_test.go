package shell

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTableEscapesAndTruncates(t *testing.T) {
	long := strings.Repeat("x", 100)
	r := &result{Columns: []string{"a", "名前"}, Values: [][]any{
		{"tab\there\nnewline", nil},
		{long, "日本"},
		{json.Number("9007199254740993"), true},
	}}
	var b strings.Builder
	printTable(&b, true, r)
	want := "+------------------------------------------------------------------+--------+\n" +
		"| a                                                                | 名前   |\n" +
		"+------------------------------------------------------------------+--------+\n" +
		"| tab\\there\\nnewline                                               | <null> |\n" +
		"| " + strings.Repeat("x", 63) + "… | 日本   |\n" +
		"| 9007199254740993                                                 | true   |\n" +
		"+------------------------------------------------------------------+--------+\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestEmptyResults(t *testing.T) {
	r := &result{Columns: []string{"id"}, Values: nil}
	for mode, want := range map[string]string{
		modeColumn: "+----+\n| id |\n+----+\n",
		modeCSV:    "id\n",
		modeJSON:   "[]\n",
		modeLine:   "",
	} {
		var b strings.Builder
		if err := printRows(&b, mode, true, r); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("%s: got %q, want %q", mode, b.String(), want)
		}
	}
}

func TestCSVQuotesAndNull(t *testing.T) {
	r := &result{Columns: []string{"a", "b"}, Values: [][]any{{"x,\"y\"", nil}}}
	var b strings.Builder
	printCSV(&b, false, r)
	if got, want := b.String(), "\"x,\"\"y\"\"\",\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSplitArgs(t *testing.T) {
	for in, want := range map[string][]string{
		"backup /tmp/a.db":         {"backup", "/tmp/a.db"},
		`backup "/tmp/my file.db"`: {"backup", "/tmp/my file.db"},
		"  mode   csv ":            {"mode", "csv"},
		`dump '' t1`:               {"dump", "", "t1"},
		"":                         nil,
	} {
		got, err := splitArgs(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := splitArgs(`backup "open`); err == nil {
		t.Error("an unterminated quote was accepted")
	}
}
