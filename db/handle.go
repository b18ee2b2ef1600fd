package db

/*
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
extern int sqlite3_reset(sqlite3_stmt*);
extern void sqlite3_set_last_insert_rowid(sqlite3*, long long);
extern int sqlite3_changes(sqlite3*);
extern int sqlite3_total_changes(sqlite3*);
extern long long sqlite3_last_insert_rowid(sqlite3*);

static void reset_stmt(void *s) { if (s) sqlite3_reset((sqlite3_stmt*)s); }
static void set_last_rowid(void *db, long long v) { if (db) sqlite3_set_last_insert_rowid((sqlite3*)db, v); }
static int changes_of(void *db) { return db ? sqlite3_changes((sqlite3*)db) : 0; }
static int total_changes_of(void *db) { return db ? sqlite3_total_changes((sqlite3*)db) : 0; }
static long long last_rowid_of(void *db) { return db ? sqlite3_last_insert_rowid((sqlite3*)db) : 0; }
*/
import "C"

import (
	"reflect"
	"unsafe"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// go-sqlite3 keeps the C handles in unexported fields (s of SQLiteStmt, db of SQLiteConn). The few
// calls the driver does not offer read them by reflection; TestHandlesFound fails if a new version of the
// driver moves them.
func handleField(v any, name string) unsafe.Pointer {
	f := reflect.ValueOf(v).Elem().FieldByName(name)
	if !f.IsValid() || f.Kind() != reflect.Pointer {
		return nil
	}
	return unsafe.Pointer(f.Pointer())
}

func stmtHandle(stmt *sqlite3.SQLiteStmt) unsafe.Pointer { return handleField(stmt, "s") }
func connHandle(conn *sqlite3.SQLiteConn) unsafe.Pointer { return handleField(conn, "db") }

// resetStmt ends a statement's execution. The driver's Exec returns after the first step that produces a
// row (a RETURNING clause, a SELECT sent as a write) without resetting the statement; a write statement
// left active would make the batch's COMMIT fail ("SQL statements in progress").
func resetStmt(stmt *sqlite3.SQLiteStmt) { C.reset_stmt(stmtHandle(stmt)) }

// connCounters reads and resets the connection-wide values that SQL can see through last_insert_rowid(),
// changes() and total_changes().
type connCounters struct{ db unsafe.Pointer }

func (c connCounters) resetLastInsertRowid()  { C.set_last_rowid(c.db, 0) }
func (c connCounters) changes() int64         { return int64(C.changes_of(c.db)) }
func (c connCounters) totalChanges() int64    { return int64(C.total_changes_of(c.db)) }
func (c connCounters) lastInsertRowid() int64 { return int64(C.last_rowid_of(c.db)) }
