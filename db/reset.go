package db

/*
typedef struct sqlite3_stmt sqlite3_stmt;
extern int sqlite3_reset(sqlite3_stmt*);

static void reset_stmt(void *s) { if (s) sqlite3_reset((sqlite3_stmt*)s); }
*/
import "C"

import (
	"reflect"
	"unsafe"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// stmtHandle finds the sqlite3_stmt pointer inside go-sqlite3's statement (an unexported field named s;
// TestStmtHandleFound fails if a new version of the driver moves it).
func stmtHandle(stmt *sqlite3.SQLiteStmt) unsafe.Pointer {
	f := reflect.ValueOf(stmt).Elem().FieldByName("s")
	if !f.IsValid() || f.Kind() != reflect.Pointer {
		return nil
	}
	return unsafe.Pointer(f.Pointer())
}

// resetStmt ends a statement's execution. The driver's Exec returns after the first step that produces a
// row (a RETURNING clause, a SELECT sent as a write) without resetting the statement; a write statement
// left active would make the batch's COMMIT fail ("SQL statements in progress").
func resetStmt(stmt *sqlite3.SQLiteStmt) {
	C.reset_stmt(stmtHandle(stmt))
}
