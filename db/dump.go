package db

import (
	"bufio"
	"context"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Dump writes the database as SQL text that recreates it (the format of rqlite's fmt=sql backup and the
// sqlite3 shell's .dump): schema and rows of every table (or only those named), then indexes, triggers and
// views. The node's own state table is left out. It reads one consistent snapshot.
func (d *DB) Dump(ctx context.Context, w io.Writer, tables []string) error {
	ctx, done := d.startRead(ctx)
	defer done()
	r, err := d.readers.get(ctx)
	if err != nil {
		return err
	}
	defer d.readers.put(r)
	if _, err := r.conn.Exec("BEGIN", nil); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	defer r.conn.Exec("ROLLBACK", nil)

	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	schema, err := queryAll(r.conn, "SELECT name, type, sql, tbl_name FROM sqlite_master WHERE sql NOT NULL ORDER BY rowid")
	if err != nil {
		return fmt.Errorf("dump: read schema: %w", err)
	}
	var names []string
	defs := map[string]string{}
	for _, row := range schema {
		name, typ, sql := asString(row[0]), asString(row[1]), asString(row[2])
		if typ == "table" && !strings.HasPrefix(name, "_raftlite_") && (len(tables) == 0 || slices.Contains(tables, name)) {
			names = append(names, name)
			defs[name] = sql
		}
	}
	slices.Sort(names)
	for _, name := range names {
		switch {
		case name == "sqlite_sequence":
			continue // below, once the AUTOINCREMENT tables that create it exist
		case name == "sqlite_stat1":
			bw.WriteString("ANALYZE sqlite_master;\n")
		case strings.HasPrefix(name, "sqlite_"):
			continue
		default:
			bw.WriteString(defs[name])
			bw.WriteString(";\n")
		}
		if name == "sqlite_stat1" {
			continue
		}
		if err := dumpRows(ctx, r.conn, bw, name); err != nil {
			return fmt.Errorf("dump table %s: %w", name, err)
		}
	}
	if slices.Contains(names, "sqlite_sequence") {
		// SQLite creates sqlite_sequence with the first AUTOINCREMENT table: a database being restored has
		// one to fill only after those tables, and none at all if they are gone (it outlives them, empty).
		seq, err := queryAll(r.conn, "SELECT count(*) FROM sqlite_sequence")
		if err != nil {
			return fmt.Errorf("dump table sqlite_sequence: %w", err)
		}
		if n, _ := seq[0][0].(int64); n > 0 {
			bw.WriteString("DELETE FROM sqlite_sequence;\n")
			if err := dumpRows(ctx, r.conn, bw, "sqlite_sequence"); err != nil {
				return fmt.Errorf("dump table sqlite_sequence: %w", err)
			}
		}
	}
	for _, row := range schema {
		name, typ, sql, table := asString(row[0]), asString(row[1]), asString(row[2]), asString(row[3])
		if typ == "table" || strings.HasPrefix(name, "sqlite_") || strings.HasPrefix(table, "_raftlite_") {
			continue
		}
		// With a list of tables: the indexes and triggers of those tables, and the views it names (a view's
		// tbl_name is its own name), as the sqlite3 shell's .dump TABLE does. An index of a table left out
		// would not restore without it.
		if len(tables) > 0 && !slices.Contains(tables, table) {
			continue
		}
		bw.WriteString(sql)
		bw.WriteString(";\n")
	}
	bw.WriteString("COMMIT;\n")
	return bw.Flush()
}

func dumpRows(ctx context.Context, conn *sqlite3.SQLiteConn, w *bufio.Writer, table string) error {
	quoted := quoteIdent(table)
	// table_xinfo's hidden column: 0 for ordinary columns, 2 and 3 for generated ones (which cannot be
	// inserted into).
	cols, err := queryAll(conn, "SELECT name, hidden FROM pragma_table_xinfo("+quoteString(table)+")")
	if err != nil {
		return err
	}
	var names, exprs []string
	for _, c := range cols {
		if h, _ := c[1].(int64); h != 0 {
			continue
		}
		names = append(names, quoteIdent(asString(c[0])))
		// Unary + keeps the value and its storage class but drops the declared type, so the driver does not
		// reinterpret DATE or BOOLEAN columns.
		exprs = append(exprs, "+"+quoteIdent(asString(c[0])))
	}
	if len(names) == 0 {
		return nil
	}
	prefix := "INSERT INTO " + quoted + " VALUES("
	if len(names) != len(cols) {
		prefix = "INSERT INTO " + quoted + "(" + strings.Join(names, ",") + ") VALUES("
	}
	rows, err := conn.QueryContext(ctx, "SELECT "+strings.Join(exprs, ",")+" FROM "+quoted, nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(names))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := rows.Next(dest)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		w.WriteString(prefix)
		for i, v := range dest {
			if i > 0 {
				w.WriteByte(',')
			}
			writeLiteral(w, v)
		}
		w.WriteString(");\n")
	}
}

// writeLiteral writes v as the SQL literal that reads back as the same value and storage class.
func writeLiteral(w *bufio.Writer, v driver.Value) {
	switch x := v.(type) {
	case nil:
		w.WriteString("NULL")
	case int64:
		w.WriteString(strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsInf(x, 1):
			w.WriteString("1e999")
		case math.IsInf(x, -1):
			w.WriteString("-1e999")
		case math.IsNaN(x):
			w.WriteString("NULL")
		default:
			s := strconv.FormatFloat(x, 'g', -1, 64)
			if !strings.ContainsAny(s, ".eE") {
				s += ".0" // stay REAL when read back
			}
			w.WriteString(s)
		}
	case bool:
		if x {
			w.WriteString("1")
		} else {
			w.WriteString("0")
		}
	case string:
		w.WriteString(quoteString(x))
	case []byte:
		w.WriteString("X'")
		w.WriteString(strings.ToUpper(hex.EncodeToString(x)))
		w.WriteString("'")
	}
}

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func quoteIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func asString(v driver.Value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

func queryAll(conn *sqlite3.SQLiteConn, sql string) ([][]driver.Value, error) {
	rows, err := conn.QueryContext(context.Background(), sql, nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]driver.Value
	for {
		dest := make([]driver.Value, len(rows.Columns()))
		err := rows.Next(dest)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dest)
	}
}
