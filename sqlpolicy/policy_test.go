package sqlpolicy

import "testing"

// The policy's decisions, statement by statement: what a request may hold, and what a connection may set.
func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		sql      string
		refused  bool // the whole request is refused
		settable bool // for a PRAGMA that sets: the connection allows it
	}{
		{"SELECT 1", false, false},
		{"PRAGMA journal_mode", false, false},
		{"PRAGMA journal_mode=DELETE", true, false},
		{"PRAGMA main.journal_mode(DELETE)", true, false},
		{"pragma SYNCHRONOUS = off", true, false},
		{"PRAGMA wal_checkpoint", true, false},
		{"PRAGMA wal_checkpoint(TRUNCATE)", true, false},
		{"PRAGMA recursive_triggers = ON", true, false},
		{"PRAGMA \"case_sensitive_like\" = 1", true, false},
		{"PRAGMA foreign_keys = ON", false, true},
		{"PRAGMA user_version = 7", false, true},
		{"PRAGMA table_info(foo)", false, true},
		{"PRAGMA no_such_pragma = 1", false, false}, // not refused whole: the connection refuses it
		{"SELECT 1; PRAGMA synchronous = 0", true, false},
	} {
		stmts := Analyze(tc.sql)
		if got := Refused(stmts); got != tc.refused {
			t.Errorf("%q: refused %v, want %v", tc.sql, got, tc.refused)
		}
		last := stmts[len(stmts)-1]
		if last.SetsPragma && Settable(last.Pragma) != tc.settable {
			t.Errorf("%q: settable %v, want %v", tc.sql, Settable(last.Pragma), tc.settable)
		}
	}
}

func TestAnalyze(t *testing.T) {
	stmts := Analyze("INSERT INTO t VALUES(1) RETURNING *; -- note\n EXPLAIN SELECT 1; PRAGMA main.cache_size = 10")
	if len(stmts) != 3 {
		t.Fatalf("%d statements", len(stmts))
	}
	if !stmts[0].Returning || !stmts[1].Returning || stmts[2].Pragma != "cache_size" || !stmts[2].SetsPragma {
		t.Errorf("analysis: %+v", stmts)
	}
	if stmts[1].Text != "EXPLAIN SELECT 1" {
		t.Errorf("text %q", stmts[1].Text)
	}
}

// The table's names are in lower case: ruleOf looks them up that way.
func TestTableNamesAreLowerCase(t *testing.T) {
	for name := range pragmas {
		for _, c := range name {
			if 'A' <= c && c <= 'Z' {
				t.Errorf("%s: not in lower case", name)
			}
		}
	}
}
