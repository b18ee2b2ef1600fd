package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/sqlscan"
)

// errWriteInQuery is rqlite's message for a write sent where only reads are allowed.
const errWriteInQuery = "attempt to change database via query operation"

// session runs the statements of one request on one connection. userTx tracks an explicit BEGIN that the
// writer has turned into a savepoint (the writer's own transaction must not be ended by a user statement).
type session struct {
	ctx    context.Context
	conn   *sqlite3.SQLiteConn
	stmts  *stmtCache
	writer *writer // nil on a read-only connection
	userTx bool
	// qualify names result columns <table>.<column> after the table they come from (?qualify_columns).
	qualify bool
	budget  *resultBudget // shared by the request's statements; nil: unlimited
	// kind is the kind of the statement runPiece ran last (on the writer only).
	kind sqlscan.Kind
}

// run executes st in the given mode and returns its result. A non-nil error means the environment failed
// (disk full, I/O error): the result must not be used, because another replica would not see that error.
func (s *session) run(st *command.Statement, mode command.Mode) (Result, error) {
	start := time.Now()
	sql := st.GetSql()
	if i := strings.IndexByte(sql, 0); i >= 0 {
		// SQLite reads SQL up to its first NUL byte, and so does every replica.
		sql = sql[:i]
	}
	pieces := sqlscan.Split(sql)
	if len(pieces) == 0 {
		// Only whitespace or comments: SQLite does nothing and neither do we.
		return s.finish(Result{Exec: &ExecResult{}}, start), nil
	}
	args := namedValues(st.GetParameters())
	var res Result
	used := 0
	for i, p := range pieces {
		last := i == len(pieces)-1
		mark := s.writer.captureMark()
		r, n, err := s.runPiece(p.Text, args, used, mode, st.GetReturning() && last, last)
		if err != nil {
			return Result{}, err
		}
		if err := s.writer.captured(s.kind, mark, r.failed()); err != nil {
			return Result{}, err
		}
		used += n
		if !last && r.failed() {
			// Like SQLite's own multi-statement execution: the first failure ends the string.
			return s.finish(r, start), nil
		}
		res = r
	}
	return s.finish(res, start), nil
}

func (s *session) finish(r Result, start time.Time) Result {
	t := time.Since(start).Seconds()
	switch {
	case r.Exec != nil:
		r.Exec.Time = t
	case r.Rows != nil:
		r.Rows.Time = t
	}
	return r
}

func (r Result) failed() bool {
	return r.Error != "" || (r.Exec != nil && r.Exec.Error != "") || (r.Rows != nil && r.Rows.Error != "")
}

// runPiece runs one SQL statement. args are the request's parameters, of which the first `used` positional
// ones were consumed by earlier statements of the same string. It returns how many it consumed.
func (s *session) runPiece(sql string, args []driver.NamedValue, used int, mode command.Mode, returning, last bool) (Result, int, error) {
	var kind sqlscan.Kind
	if s.writer != nil {
		kind = sqlscan.Analyze(sql).Kind
		s.kind = kind
		switch kind {
		case sqlscan.Begin, sqlscan.Commit, sqlscan.Rollback:
			r, err := s.transactionControl(kind)
			return r, 0, err
		}
	}
	stmt, err := s.stmts.prepare(sql)
	if err != nil {
		r, err := s.statementError(err, mode)
		return r, 0, err
	}
	if s.writer != nil && s.writer.usedExtension != "" {
		return Result{}, 0, &ExtensionMismatchError{Detail: "the request uses " + s.writer.usedExtension + ", which an extension of this node provides"}
	}
	if s.writer != nil {
		// Only the user's statement counts against the request's steps (see stepBudget.count).
		s.writer.steps.count(true)
		defer s.writer.steps.count(false)
	}
	if stmtHandle(stmt) == nil {
		// Nothing to run (SQLite found only whitespace or comments); the driver would crash on it.
		return Result{Exec: &ExecResult{}}, 0, nil
	}
	n := stmt.NumInput()
	stmtArgs, err := argsFor(args, used, n)
	if err != nil {
		return Result{Error: err.Error()}, 0, nil
	}
	asQuery := false
	switch mode {
	case command.Mode_MODE_EXECUTE:
		asQuery = returning
	case command.Mode_MODE_QUERY:
		asQuery = true
		if s.writer != nil && !stmt.Readonly() {
			// Query mode never writes, on the writer either (the store applies no query-mode request now:
			// strong reads run on the read pool).
			return Result{Rows: &Rows{Error: errWriteInQuery}}, n, nil
		}
	case command.Mode_MODE_REQUEST:
		asQuery = stmt.Readonly() || returning
	}
	if !last {
		// Earlier statements of a multi-statement string run for their effects only.
		asQuery = false
	}
	if asQuery {
		r, err := s.query(stmt, stmtArgs, mode)
		if s.writer != nil && err == nil {
			// A write run as a query (RETURNING) moves the connection's counters like any write.
			c := s.writer.counters
			s.writer.lastChange(kind, c.lastInsertRowid(), c.changes())
		}
		return r, n, err
	}
	res, err := stmt.ExecContext(s.ctx, stmtArgs)
	resetStmt(stmt)
	if err != nil {
		r, err := s.statementError(err, mode)
		if r.Rows != nil {
			r = Result{Exec: &ExecResult{Error: r.Rows.Error}}
		}
		return r, n, err
	}
	id, _ := res.LastInsertId()
	changed, _ := res.RowsAffected()
	if s.writer != nil {
		id, changed = s.writer.lastChange(kind, id, changed)
	}
	return Result{Exec: &ExecResult{LastInsertID: id, RowsAffected: changed}}, n, nil
}

func (s *session) query(stmt *sqlite3.SQLiteStmt, args []driver.NamedValue, mode command.Mode) (Result, error) {
	drows, err := stmt.QueryContext(s.ctx, args)
	if err != nil {
		return s.statementError(err, mode)
	}
	rows := drows.(*sqlite3.SQLiteRows)
	defer rows.Close()
	out := &Rows{Columns: rows.Columns()}
	if s.qualify {
		// A copy: the driver caches the statement's column names.
		cols := append([]string(nil), out.Columns...)
		for i, table := range originTables(stmt, len(cols)) {
			if table != "" {
				cols[i] = table + "." + cols[i]
			}
		}
		out.Columns = cols
	}
	decl := rows.DeclTypes()
	dest := make([]driver.Value, len(out.Columns))
	for {
		err := rows.Next(dest)
		if err == io.EOF {
			break
		}
		if err != nil {
			r, err := s.statementError(err, mode)
			if err != nil {
				return Result{}, err
			}
			out.Error = r.Rows.Error
			break
		}
		row := make([]any, len(dest))
		for i, v := range dest {
			row[i] = rowValue(v, decl[i])
		}
		if !s.budget.take(row) {
			out.Error = s.budget.exceeded()
			break
		}
		out.Values = append(out.Values, row)
	}
	out.Types = columnTypes(decl, out.Values)
	if out.Error != "" {
		out.Values = nil
	}
	return Result{Rows: out}, nil
}

// statementError turns an error from SQLite into the statement's result, or returns it as an environment
// failure (see isEnvironmental).
func (s *session) statementError(err error, mode command.Mode) (Result, error) {
	msg := err.Error()
	if s.writer != nil {
		if s.writer.steps.stopped(err) {
			msg = stepLimitError(s.writer.steps.max)
		} else if isEnvironmental(err) {
			return Result{}, err
		} else if s.writer.foreignExtensions && missingExtension(msg) {
			return Result{}, &ExtensionMismatchError{Detail: msg}
		}
	} else {
		// On a read-only connection nothing is replicated, so every error is simply the statement's result.
		switch {
		case isReadOnlyError(err):
			msg = errWriteInQuery
		case errors.Is(s.ctx.Err(), context.DeadlineExceeded):
			msg = "query timeout"
		case errors.Is(context.Cause(s.ctx), ErrReplaced):
			msg = ErrReplaced.Error()
		}
	}
	if mode == command.Mode_MODE_EXECUTE {
		return Result{Exec: &ExecResult{Error: msg}}, nil
	}
	return Result{Rows: &Rows{Error: msg}}, nil
}

// transactionControl turns a user's BEGIN, COMMIT/END or ROLLBACK into a savepoint of its own, because on
// the writer the real transaction belongs to the batch and carries the applied index.
func (s *session) transactionControl(kind sqlscan.Kind) (Result, error) {
	var sql string
	switch kind {
	case sqlscan.Begin:
		if s.userTx {
			return Result{Exec: &ExecResult{Error: "cannot start a transaction within a transaction"}}, nil
		}
		sql = "SAVEPOINT " + userTxSavepoint
		if c := s.writer.capture; c != nil {
			c.userTxMark = c.mark()
		}
	case sqlscan.Commit:
		if !s.userTx {
			return Result{Exec: &ExecResult{Error: "cannot commit - no transaction is active"}}, nil
		}
		sql = "RELEASE " + userTxSavepoint
	case sqlscan.Rollback:
		if !s.userTx {
			return Result{Exec: &ExecResult{Error: "cannot rollback - no transaction is active"}}, nil
		}
		sql = "ROLLBACK TO " + userTxSavepoint + "; RELEASE " + userTxSavepoint
		if c := s.writer.capture; c != nil {
			c.rollbackTo(c.userTxMark)
		}
	}
	if err := s.writer.exec(sql); err != nil {
		return Result{}, err
	}
	s.userTx = kind == sqlscan.Begin
	id, changed := s.writer.lastChange(kind, 0, 0)
	return Result{Exec: &ExecResult{LastInsertID: id, RowsAffected: changed}}, nil
}

// endUserTx rolls back an explicit transaction a request left open. Returns whether there was one.
func (s *session) endUserTx() (bool, error) {
	if !s.userTx {
		return false, nil
	}
	s.userTx = false
	if c := s.writer.capture; c != nil {
		c.rollbackTo(c.userTxMark)
	}
	return true, s.writer.exec("ROLLBACK TO " + userTxSavepoint + "; RELEASE " + userTxSavepoint)
}

// argsFor picks the parameters of one statement of a multi-statement string, the way go-sqlite3 does for
// rqlite: the next n parameters in order, plus every named parameter.
func argsFor(args []driver.NamedValue, start, n int) ([]driver.NamedValue, error) {
	if n == 0 {
		return nil, nil
	}
	if start == 0 && len(args) <= n {
		if len(args) < n && !hasNamed(args) {
			return nil, errNotEnoughArgs(n, len(args))
		}
		return args, nil
	}
	if len(args)-start < n && !hasNamed(args) {
		return nil, errNotEnoughArgs(n, len(args)-start)
	}
	end := min(start+n, len(args))
	out := make([]driver.NamedValue, 0, len(args))
	out = append(out, args[start:end]...)
	for i := range args {
		if args[i].Name != "" && (i < start || i >= end) {
			out = append(out, args[i])
		}
	}
	for i := range out {
		out[i].Ordinal = i + 1
	}
	return out, nil
}

func hasNamed(args []driver.NamedValue) bool {
	for _, a := range args {
		if a.Name != "" {
			return true
		}
	}
	return false
}

func errNotEnoughArgs(want, got int) error {
	return &argsError{want: want, got: got}
}

type argsError struct{ want, got int }

func (e *argsError) Error() string {
	return fmt.Sprintf("not enough args to execute query: want %d got %d", e.want, e.got)
}

func namedValues(ps []*command.Parameter) []driver.NamedValue {
	if len(ps) == 0 {
		return nil
	}
	out := make([]driver.NamedValue, len(ps))
	for i, p := range ps {
		out[i] = driver.NamedValue{Ordinal: i + 1, Name: trimParamPrefix(p.GetName())}
		switch v := p.GetValue().(type) {
		case *command.Parameter_I:
			out[i].Value = v.I
		case *command.Parameter_D:
			out[i].Value = v.D
		case *command.Parameter_B:
			out[i].Value = v.B
		case *command.Parameter_Y:
			out[i].Value = v.Y
		case *command.Parameter_S:
			out[i].Value = v.S
		}
	}
	return out
}

// trimParamPrefix accepts "name", ":name", "@name" and "$name" alike; the driver adds the prefixes itself.
func trimParamPrefix(name string) string {
	if name != "" && strings.ContainsRune(":@$", rune(name[0])) {
		return name[1:]
	}
	return name
}

// rowValue converts a driver value to the kinds a Rows holds.
func rowValue(v driver.Value, decl string) any {
	switch x := v.(type) {
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case []byte:
		if isTextType(decl) {
			return string(x)
		}
		return x
	default:
		return v
	}
}

// isTextType reports whether a declared column type has text affinity in rqlite's sense: BLOBs stored in
// such columns come back as strings. Columns with no declared type (expressions) keep BLOBs as BLOBs.
func isTextType(decl string) bool {
	if decl == "" {
		return false
	}
	for _, p := range []string{"text", "json", "char", "varchar", "varying character", "nchar", "native character", "nvarchar", "clob"} {
		if strings.HasPrefix(decl, p) {
			return true
		}
	}
	return false
}

// columnTypes is the declared type of each column, or for expressions the type of the first row's value.
func columnTypes(decl []string, values [][]any) []string {
	types := make([]string, len(decl))
	for i, d := range decl {
		if d != "" || len(values) == 0 {
			types[i] = d
			continue
		}
		switch values[0][i].(type) {
		case int64:
			types[i] = "integer"
		case float64:
			types[i] = "real"
		case bool:
			types[i] = "boolean"
		case []byte:
			types[i] = "blob"
		case string:
			types[i] = "text"
		}
	}
	return types
}

// isEnvironmental reports whether err comes from the node's environment rather than from the SQL: such an
// error must never become a statement's result, because the other replicas did not hit it.
func isEnvironmental(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrNomem, sqlite3.ErrBusy, sqlite3.ErrCorrupt,
		sqlite3.ErrCantOpen, sqlite3.ErrNotADB, sqlite3.ErrProtocol, sqlite3.ErrPerm, sqlite3.ErrNoLFS,
		sqlite3.ErrInterrupt:
		return true
	}
	return false
}

// IsNoSpace reports a failure for lack of disk space.
func IsNoSpace(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}

// DiskFault names a failure of the disk that will not pass by itself, such as a full disk, a file system
// mounted read-only or an I/O error, or returns "" for anything else (a lock held for a moment, say).
func DiskFault(err error) string {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		switch {
		case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
			return "disk full"
		case errors.Is(err, syscall.EROFS):
			return "read-only file system"
		case errors.Is(err, syscall.EIO):
			return "I/O error"
		}
		return ""
	}
	switch {
	case se.Code == sqlite3.ErrFull || se.SystemErrno == syscall.ENOSPC || se.SystemErrno == syscall.EDQUOT:
		return "disk full"
	case se.SystemErrno == syscall.EROFS || se.Code == sqlite3.ErrReadonly:
		return "read-only file system"
	case se.Code == sqlite3.ErrIoErr || se.SystemErrno == syscall.EIO:
		return "I/O error"
	}
	return ""
}

func isReadOnlyError(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrReadonly
}

// ExtensionMismatchError is a request this node cannot apply as the leader that proposed it did, because
// the two load different SQLite extensions: a statement failed here for want of a function or virtual
// table module, or used one that an extension of this node provides (the leader may lack it). Recording
// either outcome could make this replica differ from the others, so the request is not applied here (the
// node reports a fault) until the node loads the same extensions as the leader.
type ExtensionMismatchError struct{ Detail string }

func (e *ExtensionMismatchError) Error() string {
	return e.Detail + ", and the leader that proposed the write loads other SQLite extensions than this node"
}

// missingExtension reports SQLite's errors for a function or module it does not know.
func missingExtension(msg string) bool {
	return strings.Contains(msg, "no such function") || strings.Contains(msg, "no such module")
}
