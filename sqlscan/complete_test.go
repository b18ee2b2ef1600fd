package sqlscan

import "testing"

func TestComplete(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"", false},
		{"   \n", false},
		{";", true},
		{"SELECT 1", false},
		{"SELECT 1;", true},
		{"SELECT 1;  -- done", true},
		{"SELECT 1; /* done */\n", true},
		{"SELECT 1; /* open", false},
		{"SELECT 1 /* ; */", false},
		{"SELECT ';'", false},
		{"SELECT 'it''s;", false},
		{"SELECT \"a;", false},
		{"SELECT 1;\nSELECT 2", false},
		{"SELECT 1;\nSELECT 2;", true},
		{"CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1);", false},
		{"CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); END", false},
		{"CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); END;", true},
		{"CREATE TEMP TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END ;", true},
		{"EXPLAIN CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;", false},
		{"CREATE TABLE trigger(end);", true},
	} {
		if got := Complete(tc.src); got != tc.want {
			t.Errorf("Complete(%q) = %v, want %v", tc.src, got, tc.want)
		}
	}
}

// A complete source followed by the start of another statement (on a new line, so that a trailing "--"
// comment has ended) is no longer complete.
func FuzzComplete(f *testing.F) {
	f.Add("SELECT 1;")
	f.Add("CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;")
	f.Fuzz(func(t *testing.T, src string) {
		if Complete(src) && Complete(src+"\nSELECT 1") {
			t.Fatalf("%q followed by another statement is still complete", src)
		}
	})
}
