package db

import (
	"context"
	"strings"
	"time"

	"github.com/raftlite/raftlite/command"
)

// ReadsInProgress is the number of read-only connections in use now: queries, and also dumps, copies
// (snapshots, backups) and the read-only checks of /db/request.
func (d *DB) ReadsInProgress() int { return d.readers.inUse() }

// Query runs a request on a read-only connection: nothing it does can change the database, and a statement
// that tries fails with rqlite's "attempt to change database via query operation". Only ctx cancellation
// or a pool failure returns an error; SQL errors are per-statement results.
func (d *DB) Query(ctx context.Context, req *command.Request) (OpResult, error) {
	ctx, done := d.startRead(ctx)
	defer done()
	r, err := d.readers.get(ctx)
	if err != nil {
		return OpResult{}, err
	}
	defer d.readers.put(r)

	mode := req.GetMode()
	if mode == command.Mode_MODE_EXECUTE {
		mode = command.Mode_MODE_QUERY
	}
	var res OpResult
	if req.GetTransaction() {
		if _, err := r.conn.Exec("BEGIN", nil); err != nil {
			return OpResult{Error: err.Error()}, nil
		}
	}
	timeout := time.Duration(req.GetDbTimeoutNs())
	budget := newResultBudget(d.opts.MaxResultBytes)
	for _, st := range req.GetStatements() {
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			sctx, cancel = context.WithTimeout(ctx, timeout)
		}
		s := &session{ctx: sctx, conn: r.conn, stmts: r.stmts, qualify: req.GetQualifyColumns(), budget: budget}
		result, _ := s.run(st, mode) // on a reader every error is a statement result
		cancel()
		res.Results = append(res.Results, result)
		if req.GetTransaction() && result.failed() {
			break
		}
	}
	// A transaction the request opened (or left open) is ended by the pool on return.
	return res, nil
}

// ReadOnly reports whether every statement of req only reads, as SQLite judges it (the way /db/request
// chooses between the read path and the log). A statement that fails to prepare counts as a write, so that
// it goes through the log and fails there in the same way on every node.
func (d *DB) ReadOnly(ctx context.Context, req *command.Request) (bool, error) {
	d.swap.RLock()
	defer d.swap.RUnlock()
	r, err := d.readers.get(ctx)
	if err != nil {
		return false, err
	}
	defer d.readers.put(r)
	for _, st := range req.GetStatements() {
		if st.GetReturning() {
			return false, nil
		}
		sql := st.GetSql()
		if i := strings.IndexByte(sql, 0); i >= 0 {
			sql = sql[:i]
		}
		for _, p := range splitSQL(sql) {
			stmt, err := r.stmts.prepare(p)
			if err != nil || stmtHandle(stmt) == nil || !stmt.Readonly() {
				return false, nil
			}
		}
	}
	return true, nil
}

// Check prepares every statement of sql on a read-only connection without running it, and returns the
// first error SQLite reports (a syntax error, an unknown table or column).
func (d *DB) Check(ctx context.Context, sql string) error {
	d.swap.RLock()
	defer d.swap.RUnlock()
	r, err := d.readers.get(ctx)
	if err != nil {
		return err
	}
	defer d.readers.put(r)
	if i := strings.IndexByte(sql, 0); i >= 0 {
		sql = sql[:i]
	}
	for _, p := range splitSQL(sql) {
		if _, err := r.stmts.prepare(p); err != nil {
			return err
		}
	}
	return nil
}
