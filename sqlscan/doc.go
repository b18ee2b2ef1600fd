// Package sqlscan owns the lexical view of SQLite SQL: tokens with exact byte offsets, statement splitting
// with sqlite3_complete() semantics, and cheap classification of a statement (kind, RETURNING, PRAGMA).
package sqlscan
