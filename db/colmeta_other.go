//go:build !sqlite_column_metadata

package db

import sqlite3 "github.com/mattn/go-sqlite3"

// columnMetadata reports whether this build can name the table a result column comes from: SQLite only
// knows with SQLITE_ENABLE_COLUMN_METADATA (the sqlite_column_metadata build tag; `make build` sets it).
const columnMetadata = false

func originTables(*sqlite3.SQLiteStmt, int) []string { return nil }
