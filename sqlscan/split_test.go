package sqlscan

import "testing"

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"empty", "", nil},
		{"only space and comments", "  -- x\n /* y */ ", nil},
		{"empty statements", ";;", nil},
		{"empty statements around", " ; SELECT 1 ;; ; SELECT 2;;", []string{"SELECT 1", "SELECT 2"}},
		{"one", "SELECT 1", []string{"SELECT 1"}},
		{"one terminated", "SELECT 1;", []string{"SELECT 1"}},
		{"trailing without semicolon", "SELECT 1; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"leading and trailing trivia trimmed", " /*a*/ SELECT 1 /*b*/ ; -- c\n SELECT 2 -- d",
			[]string{"SELECT 1", "SELECT 2"}},
		{"inner comments kept", "SELECT /* ; */ 1 -- ;\n + 2; SELECT 3",
			[]string{"SELECT /* ; */ 1 -- ;\n + 2", "SELECT 3"}},
		{"semicolons in strings and names", `SELECT ';', "a;b", [c;d], ` + "`e;f`" + `; SELECT 2`,
			[]string{`SELECT ';', "a;b", [c;d], ` + "`e;f`", "SELECT 2"}},
		{"unterminated string swallows the rest", "SELECT 'a; SELECT 2", []string{"SELECT 'a; SELECT 2"}},
		{"unterminated comment swallows the rest", "SELECT 1 /* ; SELECT 2", []string{"SELECT 1"}},
		{"trigger",
			"CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES(1); UPDATE c SET x = 1; END; SELECT 1",
			[]string{"CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES(1); UPDATE c SET x = 1; END", "SELECT 1"}},
		{"trigger with CASE ... END inside",
			"create trigger t after insert on a begin update b set x = case when 1 then 2 end; end;select 1",
			[]string{"create trigger t after insert on a begin update b set x = case when 1 then 2 end; end", "select 1"}},
		{"temp trigger", "CREATE TEMP TRIGGER t BEGIN SELECT 1; END; CREATE TEMPORARY TRIGGER u BEGIN SELECT 2; END",
			[]string{"CREATE TEMP TRIGGER t BEGIN SELECT 1; END", "CREATE TEMPORARY TRIGGER u BEGIN SELECT 2; END"}},
		{"explain create trigger", "EXPLAIN CREATE TRIGGER t BEGIN SELECT 1; END; SELECT 2",
			[]string{"EXPLAIN CREATE TRIGGER t BEGIN SELECT 1; END", "SELECT 2"}},
		{"explain query plan create trigger", "EXPLAIN QUERY PLAN CREATE TRIGGER t BEGIN SELECT 1; END; SELECT 2",
			[]string{"EXPLAIN QUERY PLAN CREATE TRIGGER t BEGIN SELECT 1; END", "SELECT 2"}},
		{"comments between ; END ;", "CREATE TRIGGER t BEGIN SELECT 1; /* x */ END -- y\n ; SELECT 2",
			[]string{"CREATE TRIGGER t BEGIN SELECT 1; /* x */ END", "SELECT 2"}},
		{"END not after ; does not end a trigger", "CREATE TRIGGER t BEGIN SELECT 1 END; SELECT 2",
			[]string{"CREATE TRIGGER t BEGIN SELECT 1 END; SELECT 2"}},
		{"trigger needing END", "CREATE TRIGGER t BEGIN SELECT 1; END x; END; SELECT 2",
			[]string{"CREATE TRIGGER t BEGIN SELECT 1; END x; END", "SELECT 2"}},
		{"quoted trigger keyword is a name", `CREATE "TRIGGER" x; SELECT 1`, []string{`CREATE "TRIGGER" x`, "SELECT 1"}},
		{"create table named trigger-like", "CREATE TABLE trigger(x); SELECT 1", []string{"CREATE TABLE trigger(x)", "SELECT 1"}},
		{"unfinished trigger", "CREATE TRIGGER t BEGIN SELECT 1;", []string{"CREATE TRIGGER t BEGIN SELECT 1;"}},
		{"end statement", "BEGIN; END; COMMIT", []string{"BEGIN", "END", "COMMIT"}},
		{"bom", "\xef\xbb\xbfSELECT 1", []string{"SELECT 1"}},
	}
	for _, tt := range tests {
		got := Split(tt.src)
		if len(got) != len(tt.want) {
			t.Errorf("%s: Split(%q) = %q, want %q", tt.name, tt.src, texts(got), tt.want)
			continue
		}
		for i, st := range got {
			if st.Text != tt.want[i] || tt.src[st.Start:st.End] != st.Text {
				t.Errorf("%s: statement %d = %q [%d:%d], want %q", tt.name, i, st.Text, st.Start, st.End, tt.want[i])
			}
		}
	}
}

func texts(stmts []Stmt) []string {
	var out []string
	for _, s := range stmts {
		out = append(out, s.Text)
	}
	return out
}

func TestSplitAllocations(t *testing.T) {
	src := "INSERT INTO foo(id, name, age) VALUES(?, ?, ?)"
	if n := testing.AllocsPerRun(100, func() { Split(src) }); n > 1 {
		t.Errorf("Split of one statement allocates %v times, want at most 1 (the result)", n)
	}
	if n := testing.AllocsPerRun(100, func() { Split("  -- nothing\n") }); n != 0 {
		t.Errorf("Split of no statement allocates %v times, want 0", n)
	}
}
