package sqlscan

import "testing"

func TestPragma(t *testing.T) {
	tests := []struct {
		src           string
		schema, name  string
		setting, isOK bool
	}{
		{"PRAGMA journal_mode", "", "journal_mode", false, true},
		{"pragma main.journal_mode = WAL", "main", "journal_mode", true, true},
		{"PRAGMA journal_mode(WAL)", "", "journal_mode", true, true},
		{"PRAGMA journal_mode == WAL", "", "journal_mode", true, true},
		{"PRAGMA journal_mode=-1", "", "journal_mode", true, true},
		{"  /* a */ PRAGMA -- b\n main /* c */ . /* d */ journal_mode /* e */ = /* f */ WAL ;", "main", "journal_mode", true, true},
		{"PRAGMA\tJournal_Mode\n(\nwal\n)", "", "Journal_Mode", true, true},
		{`PRAGMA "journal_mode" = wal`, "", "journal_mode", true, true},
		{`PRAGMA [main].'journal_mode'`, "main", "journal_mode", false, true},
		{"PRAGMA `a``b`", "", "a`b", false, true},
		{"PRAGMA table_info(t)", "", "table_info", true, true},
		{"PRAGMA optimize; PRAGMA x = 1", "", "optimize", false, true},
		{";PRAGMA foreign_keys", "", "foreign_keys", false, true},
		{"PRAGMA x junk", "", "x", false, true},
		{"PRAGMA", "", "", false, false},
		{"PRAGMA main.", "", "", false, false},
		{"PRAGMA = 1", "", "", false, false},
		{"SELECT 1", "", "", false, false},
		{"EXPLAIN PRAGMA x", "", "", false, false},
		{"", "", "", false, false},
		{`"PRAGMA" x`, "", "", false, false},
	}
	for _, tt := range tests {
		schema, name, setting, ok := Pragma(tt.src)
		if schema != tt.schema || name != tt.name || setting != tt.setting || ok != tt.isOK {
			t.Errorf("Pragma(%q) = (%q, %q, %v, %v), want (%q, %q, %v, %v)", tt.src, schema, name, setting, ok,
				tt.schema, tt.name, tt.setting, tt.isOK)
		}
	}
}

func TestUnquote(t *testing.T) {
	for in, want := range map[string]string{
		`"a""b"`: `a"b`, "'it''s'": "it's", "`x`": "x", "[a b]": "a b", "plain": "plain", "": "",
		`"open`: "open", "'": "", "[": "",
	} {
		if got := Unquote(in); got != want {
			t.Errorf("Unquote(%q) = %q, want %q", in, got, want)
		}
	}
}
