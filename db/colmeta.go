//go:build sqlite_column_metadata

package db

import sqlite3 "github.com/mattn/go-sqlite3"

// columnMetadata reports whether this build can name the table a result column comes from.
const columnMetadata = true

// originTables returns, for each result column of stmt, the table it is read from ("" for expressions).
func originTables(stmt *sqlite3.SQLiteStmt, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = stmt.ColumnTableName(i)
	}
	return out
}
