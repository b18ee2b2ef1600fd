package db

// Result is the outcome of one statement: exactly one of Exec, Rows or Error is set.
type Result struct {
	Exec  *ExecResult
	Rows  *Rows
	Error string
}

// ExecResult is the outcome of a statement that ran as a write.
type ExecResult struct {
	LastInsertID int64
	RowsAffected int64
	Error        string
	Time         float64 // seconds
}

// Rows is the outcome of a statement that ran as a query. Values hold int64, float64, bool, string, []byte
// or nil; dates of DATE/DATETIME/TIMESTAMP columns arrive as RFC 3339 strings.
type Rows struct {
	Columns []string
	Types   []string
	Values  [][]any
	Error   string
	Time    float64 // seconds
}

// errorResult builds the result of a statement that failed before it could run as either kind.
func errorResult(msg string) Result { return Result{Error: msg} }
