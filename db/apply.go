package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/raftlite/raftlite/command"
)

// Env is the deterministic environment of one command: every replica runs it with this clock and seed.
type Env struct {
	NowUnixMs int64
	Seed      uint64
	// StepLimit bounds the SQLite instructions of the request (DefaultApplyStepLimit if 0).
	StepLimit int64
	// ExtensionsDigest is the proposing leader's extensions digest (Options.ExtensionsDigest).
	ExtensionsDigest string
}

// Op is one committed log entry to apply.
type Op struct {
	Index, Term uint64
	Request     *command.Request // nil when the entry changes no data (a no-op or a membership change)
	Env         Env
	Membership  []byte // non-nil: the membership as of this entry, to be stored with it
}

// OpResult is what a request produced: one result per statement, and a request-level error.
type OpResult struct {
	Results []Result
	Error   string
}

// errLeftOpen is reported when a request began a transaction and did not end it: the writer cannot carry
// it into the next request (requests are atomic units of the log), so it is rolled back.
const errLeftOpen = "transaction left open at the end of the request was rolled back"

// stmtKey names one statement of one op in a batch.
type stmtKey struct{ op, stmt int }

// Apply applies ops, in order. Consecutive ops share one transaction, which also records the last op's
// index and term as applied; an op that needs the connection outside a transaction (see soloMode) gets one
// of its own. It returns one OpResult per op that was committed: all of them, or, with an error, those
// committed before the environment failed (disk full, I/O error); the caller retries the rest later.
// Environmental errors are never reported as statement results, since other replicas did not see them.
// An op at or below the applied index was applied already and is skipped: nothing is applied twice.
func (d *DB) Apply(ops []Op) ([]OpResult, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		return nil, errClosed
	}
	out := make([]OpResult, 0, len(ops))
	for len(ops) > 0 {
		if ops[0].Index <= d.State().AppliedIndex {
			d.log.Warn("skipping an entry the database already holds", "index", ops[0].Index)
			out = append(out, OpResult{})
			ops = ops[1:]
			continue
		}
		n, solo := 1, soloMode(ops[0].Request)
		if solo == soloNone {
			for n < len(ops) && soloMode(ops[n].Request) == soloNone && ops[n].Index > ops[n-1].Index {
				n++
			}
		}
		res, err := d.applySegment(ops[:n], solo)
		if err != nil {
			return out, err
		}
		out = append(out, res...)
		ops = ops[n:]
	}
	return out, nil
}

// applySegment applies ops in one transaction (or, for a solo op, around its special statement).
func (d *DB) applySegment(ops []Op, solo soloKind) ([]OpResult, error) {
	switch solo {
	case soloVacuum:
		return d.applyVacuum(ops[0])
	case soloPragma:
		// A leading PRAGMA foreign_keys only takes effect outside a transaction. It is set for this
		// request alone: every replica's writer otherwise enforces what -fk says. It runs as the user's
		// statement; if it is malformed, it fails again inside the request, which reports it.
		if _, err := d.w.conn.Exec(leadingPiece(ops[0].Request), nil); err != nil && isEnvironmental(err) {
			return nil, err
		}
		defer d.w.exec(fmt.Sprintf("PRAGMA foreign_keys=%t", d.opts.ForeignKeys))
	}
	// A statement can roll back the writer's whole transaction (ON CONFLICT ROLLBACK, RAISE(ROLLBACK)). In
	// autocommit mode, as in rqlite, that would have undone only its own statement. So the segment is
	// applied again with that statement's outcome recorded instead of running it, until a pass completes.
	outcomes := map[stmtKey]Result{}
	for {
		out, rolledBack, err := d.applyOnce(ops, outcomes)
		var refused *commitRefusedError
		if errors.As(err, &refused) {
			return d.applyRefused(ops, out, refused)
		}
		if err != nil {
			return nil, err
		}
		if rolledBack == nil {
			return out, nil
		}
		outcomes[rolledBack.key] = rolledBack.result
	}
}

// commitRefusedError is a COMMIT that failed because of the SQL it would commit (a deferred foreign key
// constraint), not because of the disk: every replica fails it in the same way.
type commitRefusedError struct{ err error }

func (e *commitRefusedError) Error() string { return e.err.Error() }

// applyRefused handles a segment whose COMMIT SQLite refused. With several ops, each is applied on its
// own to find the one at fault; that one's changes are rolled back, its error becomes its result, and its
// index is recorded as applied, so the log moves on.
func (d *DB) applyRefused(ops []Op, out []OpResult, refused *commitRefusedError) ([]OpResult, error) {
	if len(ops) > 1 {
		var all []OpResult
		for _, op := range ops {
			res, err := d.applySegment([]Op{op}, soloNone)
			all = append(all, res...)
			if err != nil {
				return all, err
			}
		}
		return all, nil
	}
	op := ops[0]
	res := OpResult{Error: refused.Error()}
	if len(out) == 1 {
		res.Results = out[0].Results
	}
	if err := d.recordApplied(op); err != nil {
		return nil, err
	}
	return []OpResult{res}, nil
}

// recordApplied records op as applied without changing anything else.
func (d *DB) recordApplied(op Op) error {
	w := d.w
	if err := w.exec("BEGIN"); err != nil {
		return err
	}
	st := d.State()
	st.AppliedIndex, st.AppliedTerm = op.Index, op.Term
	if op.Request != nil {
		st.DataIndex = op.Index
	}
	if err := w.internalExec(w.setApplied, int64(op.Index), int64(op.Term), int64(st.DataIndex)); err != nil {
		d.abort()
		return err
	}
	if err := w.exec("COMMIT"); err != nil {
		d.abort()
		return err
	}
	d.state.Store(&st)
	return nil
}

// applyVacuum runs a request made only of VACUUM statements, which SQLite cannot run in a transaction,
// then records it as applied. A crash in between runs it again on restart, which changes nothing.
func (d *DB) applyVacuum(op Op) ([]OpResult, error) {
	w := d.w
	s := &session{ctx: context.Background(), conn: w.conn, stmts: d.wstmts, writer: w}
	var res OpResult
	// VACUUM runs its own BEGIN and ATTACH inside, which the authorizer refuses to users; soloMode has
	// checked that these are plain VACUUM statements.
	w.internal = true
	defer func() { w.internal = false }()
	for _, st := range op.Request.GetStatements() {
		r, err := s.run(st, op.Request.GetMode())
		if err != nil {
			return nil, err
		}
		res.Results = append(res.Results, r)
	}
	if err := d.recordApplied(op); err != nil {
		return nil, err
	}
	return []OpResult{res}, nil
}

type rollback struct {
	key    stmtKey
	result Result
}

func (d *DB) applyOnce(ops []Op, outcomes map[stmtKey]Result) ([]OpResult, *rollback, error) {
	w := d.w
	if err := w.exec("BEGIN"); err != nil {
		return nil, nil, fmt.Errorf("begin apply transaction: %w", err)
	}
	out := make([]OpResult, len(ops))
	w.capture.reset()
	for k, op := range ops {
		if op.Request != nil {
			w.seed(op.Env)
			if w.foreignExtensions && w.builtin != nil {
				// Statements prepared afresh, so that the authorizer sees every function they use.
				d.wstmts.close()
			}
			w.startRequest()
			w.steps.limit(stepLimit(op.Env))
			res, rb, err := d.applyRequest(k, op.Index, op.Request, outcomes)
			w.steps.lift()
			if err == nil && rb == nil {
				w.storeGroup(op)
			}
			if err != nil || rb != nil {
				d.abort()
				w.capture.abandoned()
				return nil, rb, err
			}
			out[k] = res
		}
		if op.Membership != nil {
			if err := w.internalExec(w.setMembership, op.Membership); err != nil {
				d.abort()
				w.capture.abandoned()
				return nil, nil, fmt.Errorf("store membership at index %d: %w", op.Index, err)
			}
		}
	}
	last := ops[len(ops)-1]
	dataIndex := d.State().DataIndex
	for _, op := range ops {
		if op.Request != nil {
			dataIndex = op.Index
		}
	}
	if err := w.flushGroups(); err != nil {
		d.abort()
		w.capture.abandoned()
		return nil, nil, err
	}
	if err := w.internalExec(w.setApplied, int64(last.Index), int64(last.Term), int64(dataIndex)); err != nil {
		d.abort()
		w.capture.abandoned()
		return nil, nil, fmt.Errorf("store applied index %d: %w", last.Index, err)
	}
	if err := w.exec("COMMIT"); err != nil {
		d.abort()
		w.capture.abandoned()
		if !isEnvironmental(err) {
			return out, nil, &commitRefusedError{err: err}
		}
		return nil, nil, fmt.Errorf("commit entries %d-%d: %w", ops[0].Index, last.Index, err)
	}
	w.capture.committed()
	st := State{AppliedIndex: last.Index, AppliedTerm: last.Term, Membership: d.State().Membership, DataIndex: dataIndex}
	for _, op := range ops {
		if op.Membership != nil {
			st.Membership = op.Membership
		}
	}
	d.state.Store(&st)
	return out, nil, nil
}

// abort ends a failed apply transaction, if SQLite has not already.
func (d *DB) abort() {
	if !d.w.conn.AutoCommit() {
		if err := d.w.exec("ROLLBACK"); err != nil {
			d.log.Error("roll back failed apply transaction", "err", err)
		}
	}
}

func (d *DB) applyRequest(k int, index uint64, req *command.Request, outcomes map[stmtKey]Result) (OpResult, *rollback, error) {
	w := d.w
	s := &session{ctx: context.Background(), conn: w.conn, stmts: d.wstmts, writer: w, qualify: req.GetQualifyColumns(),
		budget: newResultBudget(applyResultBytes)}
	atomic := req.GetTransaction() || req.GetRollbackOnError()
	if atomic {
		if err := w.exec("SAVEPOINT " + requestSavepoint); err != nil {
			return OpResult{}, nil, err
		}
	}
	var res OpResult
	stopped := false // a statement hit the step limit: the rest of the request is not run
	for j, st := range req.GetStatements() {
		if stopped {
			res.Results = append(res.Results, stepLimitResult(req.GetMode(), w.steps.max))
			continue
		}
		r, recorded := outcomes[stmtKey{k, j}]
		if recorded && s.userTx {
			// That statement rolled back the whole transaction, the user's explicit one included: end it
			// the same way, so that its earlier statements are undone and a later COMMIT finds nothing.
			if _, err := s.endUserTx(); err != nil {
				return OpResult{}, nil, err
			}
		}
		if !recorded {
			var err error
			a := d.startApplying(index, st.GetSql())
			r, err = s.run(st, req.GetMode())
			d.doneApplying(a)
			if err != nil {
				return OpResult{}, nil, err
			}
			if w.conn.AutoCommit() {
				return OpResult{}, &rollback{key: stmtKey{k, j}, result: r}, nil
			}
		}
		res.Results = append(res.Results, r)
		stopped = r.stoppedBySteps(w.steps.max)
		if atomic && r.failed() {
			if err := w.exec("ROLLBACK TO " + requestSavepoint + "; RELEASE " + requestSavepoint); err != nil {
				return OpResult{}, nil, err
			}
			w.capture.rollbackTo(0)
			return res, nil, nil
		}
	}
	leftOpen, err := s.endUserTx()
	if err != nil {
		return OpResult{}, nil, err
	}
	if leftOpen {
		res.Error = errLeftOpen
	}
	if atomic {
		if err := w.exec("RELEASE " + requestSavepoint); err != nil {
			return OpResult{}, nil, err
		}
	}
	return res, nil, nil
}
