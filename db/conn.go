package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/raftlite/raftlite/sqlscan"
)

// stateTable holds the applied index and term, the data index and the cluster membership, inside the
// database itself so that they change in the same transaction as the data they describe. User statements may read it but not
// change it (see authorize).
const stateTable = "_raftlite_state"

// Names of the savepoints the writer uses; user statements may not release or roll back to them.
const (
	requestSavepoint = "_raftlite_request"
	userTxSavepoint  = "_raftlite_user_tx"
)

// uriPath makes a file path safe inside a SQLite URI filename.
func uriPath(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path)
}

func openConn(dsn string) (*sqlite3.SQLiteConn, error) { return openConnWith(dsn, nil) }

// openConnWith opens a connection that loads the SQLite extensions at exts (in order). Loading is
// enabled only while the driver loads them, so SQL's load_extension() stays unavailable to users.
func openConnWith(dsn string, exts []string) (*sqlite3.SQLiteConn, error) {
	c, err := (&sqlite3.SQLiteDriver{Extensions: exts}).Open(dsn)
	if err != nil {
		if len(exts) > 0 {
			return nil, fmt.Errorf("open with extensions %v: %w", exts, err)
		}
		return nil, err
	}
	return c.(*sqlite3.SQLiteConn), nil
}

func writerDSN(path, vfs string, fk bool) string {
	return fmt.Sprintf("%s?vfs=%s&_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_foreign_keys=%t&_stmt_cache_size=256",
		uriPath(path), vfs, fk)
}

func readerDSN(path string, fk bool) string {
	return fmt.Sprintf("%s?mode=ro&_query_only=true&_busy_timeout=5000&_foreign_keys=%t&_stmt_cache_size=64",
		uriPath(path), fk)
}

// writer is the single read-write connection. Only one goroutine uses it at a time (DB.wmu).
type writer struct {
	conn  *sqlite3.SQLiteConn
	dsn   string
	clock *clock
	rng   *rand.Rand
	// internal is true while the writer runs its own statements; the authorizer then allows what it
	// refuses to users.
	internal bool
	// setApplied and setMembership are prepared once and kept out of the statement cache, so that a user
	// statement with the same text is prepared (and authorized) afresh.
	setApplied    driver.Stmt
	setMembership driver.Stmt
	// lastID and lastChanges are what SQLite's last_insert_rowid() and changes() would say had only user
	// statements run on this connection (see lastChange).
	lastID, lastChanges int64
	// counters, reqDML and reqTotalBase make last_insert_rowid(), changes() and total_changes() in SQL
	// depend on the current request only (see startRequest): across requests they would depend on the
	// connection's history, which a restarted replica does not share.
	counters     connCounters
	reqDML       bool
	reqTotalBase int64
	// steps bounds the work of each applied request (applyStepLimit).
	steps *stepBudget
	// capture records the row changes of applied entries (nil without Options.Capture).
	capture *capturer
	// refused is why the authorizer last refused a user statement.
	refused refusal
	// extensionsDigest is this node's (Options.ExtensionsDigest); foreignExtensions is true while applying
	// a request proposed by a leader that loads other extensions. builtin lists the functions and modules
	// SQLite has without this node's extensions (nil without extensions); usedExtension is the first other
	// one a statement of such a request used (see ExtensionMismatchError).
	extensionsDigest  string
	foreignExtensions bool
	builtin           map[string]bool
	usedExtension     string
}

// startRequest begins a request's own view of the connection counters.
func (w *writer) startRequest() {
	w.counters.resetLastInsertRowid()
	w.reqDML = false
	w.reqTotalBase = w.counters.totalChanges()
}

// sqlChanges is changes() as SQL sees it: 0 until a statement of this request changed rows.
func (w *writer) sqlChanges() int64 {
	if !w.reqDML {
		return 0
	}
	return w.counters.changes()
}

// sqlTotalChanges is total_changes() as SQL sees it: rows changed by this request so far.
func (w *writer) sqlTotalChanges() int64 { return w.counters.totalChanges() - w.reqTotalBase }

// lastChange returns the last insert id and rows affected to report for a user statement of the given
// kind that the driver reported id and changed for. rqlite reports SQLite's connection-wide values, so a
// statement that is not an INSERT, UPDATE or DELETE repeats those of the last one that was. Here the
// connection also runs the writer's own bookkeeping UPDATE, which must not show through.
func (w *writer) lastChange(kind sqlscan.Kind, id, changed int64) (int64, int64) {
	switch kind {
	case sqlscan.Insert, sqlscan.Replace:
		if changed > 0 { // an INSERT of nothing leaves the last insert id alone, as in SQLite
			w.lastID = id
		}
		w.lastChanges, w.reqDML = changed, true
	case sqlscan.Update, sqlscan.Delete:
		w.lastChanges, w.reqDML = changed, true
	}
	return w.lastID, w.lastChanges
}

func openWriter(path string, fk bool, exts []string) (*writer, error) {
	if err := createStateTable(path); err != nil {
		return nil, fmt.Errorf("prepare %s: %w", path, err)
	}
	clk, err := acquireClock()
	if err != nil {
		return nil, err
	}
	dsn := writerDSN(path, clk.name, fk)
	conn, err := openConnWith(dsn, exts)
	if err != nil {
		releaseClock(clk)
		return nil, fmt.Errorf("open %s for writing: %w", path, err)
	}
	w := &writer{conn: conn, dsn: dsn, clock: clk, rng: rand.New(rand.NewPCG(1, 2)), counters: connCounters{db: connHandle(conn)}}
	if len(exts) > 0 {
		if w.builtin, err = builtinNames(); err != nil {
			conn.Close()
			releaseClock(clk)
			return nil, fmt.Errorf("list SQLite's built-in functions: %w", err)
		}
	}
	if w.steps, err = installStepBudget(connHandle(conn)); err != nil {
		w.close()
		return nil, fmt.Errorf("open %s for writing: %w", path, err)
	}
	if err := w.init(); err != nil {
		w.close()
		return nil, fmt.Errorf("prepare %s: %w", path, err)
	}
	return w, nil
}

func (w *writer) init() error {
	if err := w.conn.RegisterFunc("random", w.random, false); err != nil {
		return fmt.Errorf("register random(): %w", err)
	}
	if err := w.conn.RegisterFunc("randomblob", w.randomblob, false); err != nil {
		return fmt.Errorf("register randomblob(): %w", err)
	}
	if err := w.conn.RegisterFunc("changes", w.sqlChanges, false); err != nil {
		return fmt.Errorf("register changes(): %w", err)
	}
	if err := w.conn.RegisterFunc("total_changes", w.sqlTotalChanges, false); err != nil {
		return fmt.Errorf("register total_changes(): %w", err)
	}
	w.conn.RegisterAuthorizer(w.authorize)
	trackRefusals(w.conn, &w.refused)
	w.internal = true
	defer func() { w.internal = false }()
	var err error
	if w.setApplied, err = w.conn.Prepare("UPDATE " + stateTable + " SET applied_index = ?, applied_term = ?, data_index = ? WHERE id = 1"); err != nil {
		return err
	}
	if w.setMembership, err = w.conn.Prepare("UPDATE " + stateTable + " SET membership = ? WHERE id = 1"); err != nil {
		return err
	}
	return nil
}

// createStateTable makes sure the database has its state row. It uses a connection of its own, so that
// the writer starts with SQLite's last_insert_rowid() and changes() untouched by it.
func createStateTable(path string) error {
	conn, err := openConn(uriPath(path) + "?_journal_mode=WAL&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer conn.Close()
	create := "CREATE TABLE IF NOT EXISTS " + stateTable + ` (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		applied_index INTEGER NOT NULL,
		applied_term INTEGER NOT NULL,
		membership BLOB,
		data_index INTEGER NOT NULL DEFAULT 0);
		INSERT OR IGNORE INTO ` + stateTable + " (id, applied_index, applied_term) VALUES (1, 0, 0)"
	if _, err = conn.Exec(create, nil); err != nil {
		return err
	}
	return addDataIndex(conn)
}

// addDataIndex gives a state table made before the data index existed its column. The data index starts
// at the applied index: as far as anyone can tell, the data changed last at the last applied entry.
func addDataIndex(conn *sqlite3.SQLiteConn) error {
	rows, err := conn.QueryContext(context.Background(), "SELECT count(*) FROM pragma_table_info('"+stateTable+"') WHERE name = 'data_index'", nil)
	if err != nil {
		return err
	}
	dest := make([]driver.Value, 1)
	err = rows.Next(dest)
	rows.Close()
	if err != nil {
		return err
	}
	if n, _ := dest[0].(int64); n > 0 {
		return nil
	}
	_, err = conn.Exec("ALTER TABLE "+stateTable+" ADD COLUMN data_index INTEGER NOT NULL DEFAULT 0; UPDATE "+stateTable+" SET data_index = applied_index", nil)
	return err
}

func (w *writer) close() error {
	var errs []error
	for _, s := range []driver.Stmt{w.setApplied, w.setMembership} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if w.steps != nil {
		w.steps.remove()
	}
	w.capture.close()
	if w.conn != nil {
		forgetRefusals(w.conn)
		errs = append(errs, w.conn.Close())
	}
	releaseClock(w.clock)
	w.clock = nil
	return errors.Join(errs...)
}

// seed sets the deterministic environment for one command: its clock and its random sequence.
func (w *writer) seed(env Env) {
	w.foreignExtensions = env.ExtensionsDigest != w.extensionsDigest
	w.usedExtension = ""
	w.clock.set(env.NowUnixMs)
	w.rng = rand.New(rand.NewPCG(env.Seed, 0x9e3779b97f4a7c15))
}

func (w *writer) random() int64 { return int64(w.rng.Uint64()) }

func (w *writer) randomblob(n int64) ([]byte, error) {
	if n < 1 {
		n = 1
	}
	if n > maxRandomBlob {
		return nil, fmt.Errorf("randomblob(%d): larger than %d bytes", n, maxRandomBlob)
	}
	b := make([]byte, n)
	for i := 0; i < len(b); i += 8 {
		v := w.rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b, nil
}

// maxRandomBlob bounds randomblob() on the writer: a request must not be able to make every node allocate
// gigabytes.
const maxRandomBlob = 64 << 20

// exec runs one of the writer's own statements.
func (w *writer) exec(sql string) error {
	w.internal = true
	defer func() { w.internal = false }()
	_, err := w.conn.ExecContext(context.Background(), sql, nil)
	return err
}

// internalExec runs one of the writer's prepared bookkeeping statements.
func (w *writer) internalExec(stmt driver.Stmt, args ...any) error {
	w.internal = true
	defer func() { w.internal = false }()
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	_, err := stmt.(driver.StmtExecContext).ExecContext(context.Background(), nv)
	return err
}

// builtinNames are the functions and virtual table modules SQLite has without extensions, as "function
// <name>" and "module <name>", lower case.
func builtinNames() (map[string]bool, error) {
	conn, err := openConn(":memory:")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(context.Background(),
		"SELECT 'function ' || lower(name) FROM pragma_function_list UNION SELECT 'module ' || lower(name) FROM pragma_module_list", nil)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	dest := make([]driver.Value, 1)
	for rows.Next(dest) == nil {
		if name, ok := dest[0].(string); ok {
			out[name] = true
		}
	}
	return out, nil
}
