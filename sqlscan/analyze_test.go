package sqlscan

import "testing"

func TestAnalyzeKind(t *testing.T) {
	tests := []struct {
		src  string
		want Kind
	}{
		{"", Other},
		{"  -- only a comment", Other},
		{"(SELECT 1)", Other},
		{"'SELECT'", Other},
		{`"SELECT" 1`, Other},
		{"frobnicate", Other},
		{"SELECT 1", Select},
		{"  /* c */ select 1", Select},
		{";; SELECT 1", Select},
		{"INSERT INTO t VALUES(1)", Insert},
		{"UPDATE t SET a = 1", Update},
		{"DELETE FROM t", Delete},
		{"REPLACE INTO t VALUES(1)", Replace},
		{"CREATE TABLE t(a)", Create},
		{"DROP TABLE t", Drop},
		{"ALTER TABLE t ADD COLUMN b", Alter},
		{"PRAGMA foreign_keys", PragmaStmt},
		{"BEGIN", Begin},
		{"BEGIN IMMEDIATE TRANSACTION", Begin},
		{"COMMIT", Commit},
		{"END TRANSACTION", Commit},
		{"end", Commit},
		{"ROLLBACK", Rollback},
		{"ROLLBACK TRANSACTION", Rollback},
		{"ROLLBACK TO sp", RollbackTo},
		{"rollback transaction to savepoint sp", RollbackTo},
		{"ROLLBACK /* x */ TO sp", RollbackTo},
		{"SAVEPOINT sp", Savepoint},
		{"RELEASE sp", Release},
		{"VACUUM", Vacuum},
		{"ATTACH 'x.db' AS x", Attach},
		{"DETACH x", Detach},
		{"ANALYZE", AnalyzeStmt},
		{"REINDEX", Reindex},
		{"VALUES(1),(2)", Values},
		{"EXPLAIN SELECT 1", Explain},
		{"EXPLAIN QUERY PLAN INSERT INTO t VALUES(1) RETURNING *", Explain},
		{"WITH x AS (SELECT 1) SELECT * FROM x", Select},
		{"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", Insert},
		{"WITH x AS (SELECT 1) UPDATE t SET a = (SELECT * FROM x)", Update},
		{"WITH x AS (SELECT 1) DELETE FROM t WHERE a IN x", Delete},
		{"WITH x AS (SELECT 1) REPLACE INTO t SELECT * FROM x", Replace},
		{"WITH x AS (SELECT 1) VALUES(1)", Values},
		{"WITH RECURSIVE x(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM x WHERE n < 3), y AS NOT MATERIALIZED (SELECT 2) SELECT * FROM x, y", Select},
		{"WITH replace AS (SELECT 1) SELECT * FROM replace", Select}, // REPLACE can be a name
		{"WITH x AS (WITH y AS (SELECT 1) DELETE FROM y) SELECT 1", Select},
		{"WITH x AS (SELECT 1)", Other},
		{"WITH x AS (SELECT 1) garbage", Other},
		{"SELECT 1; INSERT INTO t VALUES(1)", Select},
	}
	for _, tt := range tests {
		if got := Analyze(tt.src).Kind; got != tt.want {
			t.Errorf("Analyze(%q).Kind = %v, want %v", tt.src, got, tt.want)
		}
	}
}

func TestAnalyzeReturning(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{"INSERT INTO t VALUES(1) RETURNING *", true},
		{"insert into t values(1) returning id, name", true},
		{"INSERT INTO t VALUES(1) ON CONFLICT DO UPDATE SET a = 2 RETURNING a", true},
		{"UPDATE t SET a = 1 RETURNING a", true},
		{"DELETE FROM t /* c */ RETURNING\n*", true},
		{"REPLACE INTO t VALUES(1) RETURNING *", true},
		{"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x RETURNING *", true},
		{"WITH x AS (SELECT 1) DELETE FROM t RETURNING *", true},
		{"INSERT INTO t VALUES(1)", false},
		{"INSERT INTO t VALUES('RETURNING')", false},
		{"INSERT INTO t VALUES(1) -- RETURNING *", false},
		{"INSERT INTO t VALUES(1) /* RETURNING * */", false},
		{`INSERT INTO t("returning") VALUES(1)`, false},
		{"INSERT INTO t([returning]) VALUES(1)", false},
		{"INSERT INTO t SELECT * FROM (SELECT 1 RETURNING)", false}, // depth 1
		{"WITH x AS (DELETE FROM y RETURNING *) SELECT 1", false},
		{"SELECT 1 RETURNING", false}, // not a DML statement
		{"EXPLAIN INSERT INTO t VALUES(1) RETURNING *", false},
		{"CREATE TRIGGER t BEGIN INSERT INTO x VALUES(1) RETURNING *; END", false},
		{"INSERT INTO t VALUES(1); SELECT 1 RETURNING", false},
	}
	for _, tt := range tests {
		if got := Analyze(tt.src).Returning; got != tt.want {
			t.Errorf("Analyze(%q).Returning = %v, want %v", tt.src, got, tt.want)
		}
	}
}

func TestAnalyzeAllocations(t *testing.T) {
	src := "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x RETURNING *"
	if n := testing.AllocsPerRun(100, func() { Analyze(src) }); n != 0 {
		t.Errorf("Analyze allocates %v times", n)
	}
}
