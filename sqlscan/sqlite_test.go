package sqlscan

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// TestSplitMatchesSQLite runs scripts once whole (SQLite finds the statement boundaries itself) and once
// statement by statement as Split cuts them, and expects the same database.
func TestSplitMatchesSQLite(t *testing.T) {
	scripts := []string{
		"CREATE TABLE a(x); CREATE TABLE b(y); INSERT INTO a VALUES(';'); INSERT INTO a VALUES('--');",
		`CREATE TABLE a(x); CREATE TABLE log(m);
		CREATE TRIGGER tr AFTER INSERT ON a BEGIN
			INSERT INTO log VALUES('a;b');
			UPDATE log SET m = CASE WHEN m = 'a;b' THEN 'c' ELSE m END;
			INSERT INTO log SELECT 'end' WHERE 1; -- comment; with semicolons
		END;
		INSERT INTO a VALUES(1); INSERT INTO a VALUES(2)`,
		`CREATE TABLE a(x); CREATE TABLE log(m);
		CREATE TEMP TRIGGER tr AFTER INSERT ON a BEGIN INSERT INTO log VALUES(new.x); END ;
		EXPLAIN CREATE TRIGGER tr2 AFTER INSERT ON a BEGIN SELECT 1; END;
		INSERT INTO a VALUES(7) /* ; */;;; INSERT INTO a VALUES("x;y")`,
		"CREATE TABLE [a;b](\"c;d\", `e;f`); INSERT INTO [a;b] VALUES(1, 2)",
	}
	for i, script := range scripts {
		whole, pieces := openMemory(t), openMemory(t)
		if _, err := whole.Exec(script); err != nil {
			t.Fatalf("script %d as a whole: %v", i, err)
		}
		for _, st := range Split(script) {
			if _, err := pieces.Exec(st.Text); err != nil {
				t.Fatalf("script %d, statement %q: %v", i, st.Text, err)
			}
		}
		if a, b := dump(t, whole), dump(t, pieces); a != b {
			t.Errorf("script %d: whole run gives\n%s\nsplit run gives\n%s", i, a, b)
		}
	}
}

func openMemory(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// dump renders the schema and every table's rows.
func dump(t *testing.T, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	var tables []string
	rows, err := db.Query("SELECT type, name, sql FROM sqlite_schema UNION ALL SELECT type, name, sql FROM sqlite_temp_schema ORDER BY 2")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ, name string
		var text sql.NullString
		if err := rows.Scan(&typ, &name, &text); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %s\n", typ, name, text.String)
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, name := range tables {
		rows, err := db.Query(`SELECT * FROM "` + strings.ReplaceAll(name, `"`, `""`) + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s: %v\n", name, vals)
		}
		rows.Close()
	}
	return b.String()
}
