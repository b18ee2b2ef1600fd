package db

import (
	"database/sql/driver"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// ChangeGroup is one queued group: the row changes of the committed entry at Index, as a payload entry
// of rqlite's CDC JSON.
type ChangeGroup struct {
	Index       uint64
	TimestampMs int64 // the entry's commit time (the leader's clock when it proposed it)
	JSON        []byte
}

// ChangeQueueStats describes the queue of captured groups.
type ChangeQueueStats struct {
	Length      int64
	First, Last uint64 // indexes of the oldest and newest group queued (0 if none)
	// Pruned is the highest index ever pruned: groups at or below it are gone.
	Pruned uint64
	// Delivered is the highest index known delivered (PruneChanges records it).
	Delivered uint64
}

// attachCapture sets up capture on a freshly opened writer: the queue tables and the hook. Every node
// has the tables, capturing or not, so that the schema is the same everywhere (a statement that reads
// sqlite_master sees the same on every node); a node that does not capture keeps them empty, since
// nothing would ever prune them.
func (d *DB) attachCapture(w *writer) error {
	err := w.exec("CREATE TABLE IF NOT EXISTS " + changeTable + " (idx INTEGER PRIMARY KEY, ts INTEGER NOT NULL, grp BLOB NOT NULL);" +
		"CREATE TABLE IF NOT EXISTS " + changeStateTable + " (id INTEGER PRIMARY KEY CHECK (id = 1), pruned INTEGER NOT NULL, delivered INTEGER NOT NULL);" +
		"INSERT OR IGNORE INTO " + changeStateTable + " VALUES (1, 0, 0)")
	if err != nil {
		return fmt.Errorf("create the change queue: %w", err)
	}
	if d.opts.Capture == nil {
		return w.exec("DELETE FROM " + changeTable + "; UPDATE " + changeStateTable + " SET pruned = 0, delivered = 0")
	}
	c := &capturer{cfg: *d.opts.Capture, meta: map[string]*tableMeta{}, inserts: map[int]driver.Stmt{}}
	if c.hook, err = installHook(connHandle(w.conn), !c.cfg.RowIDsOnly); err != nil {
		return err
	}
	n, err := w.queryInt("SELECT count(*) FROM " + changeTable)
	if err != nil {
		c.close()
		return fmt.Errorf("count the change queue: %w", err)
	}
	c.queued = n
	if c.delivered, err = w.queryInt("SELECT delivered FROM " + changeStateTable + " WHERE id = 1"); err != nil {
		c.close()
		return fmt.Errorf("read the change queue's state: %w", err)
	}
	w.capture = c
	return nil
}

func (c *capturer) close() {
	if c == nil {
		return
	}
	c.hook.remove()
	for _, st := range c.inserts {
		st.Close()
	}
}

// storeGroup encodes the current entry's events as its group and starts the next entry; flushGroups
// writes the batch's groups to the queue.
func (w *writer) storeGroup(op Op) {
	c := w.capture
	if c == nil {
		return
	}
	defer c.reset()
	if grp := c.group(op.Index, op.Env.NowUnixMs); grp != nil {
		c.groups = append(c.groups, ChangeGroup{Index: op.Index, TimestampMs: op.Env.NowUnixMs, JSON: grp})
	}
}

// maxInsertRows bounds the rows of one INSERT into the queue (a prepared statement per row count).
const maxInsertRows = 32

// flushGroups writes the batch's groups into the queue, in its transaction: a few multi-row INSERTs
// rather than one statement per entry.
func (w *writer) flushGroups() error {
	c := w.capture
	if c == nil || len(c.groups) == 0 {
		return nil
	}
	for rest := c.groups; len(rest) > 0; {
		n := min(len(rest), maxInsertRows)
		st, ok := c.inserts[n]
		if !ok {
			sql := "INSERT INTO " + changeTable + " (idx, ts, grp) VALUES (?, ?, ?)" + strings.Repeat(", (?, ?, ?)", n-1)
			w.internal = true
			var err error
			st, err = w.conn.Prepare(sql)
			w.internal = false
			if err != nil {
				return fmt.Errorf("prepare the change queue: %w", err)
			}
			c.inserts[n] = st
		}
		args := make([]any, 0, 3*n)
		for _, g := range rest[:n] {
			args = append(args, int64(g.Index), g.TimestampMs, g.JSON)
		}
		if err := w.internalExec(st, args...); err != nil {
			return fmt.Errorf("queue the changes of entries %d-%d: %w", rest[0].Index, rest[n-1].Index, err)
		}
		rest = rest[n:]
	}
	c.pending = int64(len(c.groups))
	c.groups = c.groups[:0]
	return nil
}

// committed counts the batch's groups as queued, once its transaction committed.
func (c *capturer) committed() {
	if c == nil || c.pending == 0 {
		return
	}
	n := c.pending
	c.queued += n
	c.pending = 0
	if c.cfg.Notify != nil {
		c.cfg.Notify(int(n))
	}
}

// abandoned forgets what a batch that did not commit had queued.
func (c *capturer) abandoned() {
	if c != nil {
		c.pending = 0
		c.groups = c.groups[:0]
		c.reset()
	}
}

// queueReader reads the change queue on a read-only connection of its own, so that reading it neither
// waits for the writer's batch nor holds it up. (The pool's readers refuse the queue to users' queries.)
type queueReader struct {
	mu   sync.Mutex
	conn *sqlite3.SQLiteConn
}

// close drops the connection (the file is about to be replaced, or the database closes).
func (q *queueReader) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn != nil {
		q.conn.Close()
		q.conn = nil
	}
}

// Changes returns up to limit queued groups with an index above after, oldest first.
func (d *DB) Changes(after uint64, limit int) ([]ChangeGroup, error) {
	if d.opts.Capture == nil {
		return nil, nil
	}
	d.swap.RLock()
	defer d.swap.RUnlock()
	if d.w == nil { // d.w changes only under d.swap's write lock
		return nil, errClosed
	}
	q := &d.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.conn == nil {
		conn, err := openConn(readerDSN(d.path, false))
		if err != nil {
			return nil, fmt.Errorf("open the change queue: %w", err)
		}
		q.conn = conn
	}
	rows, err := q.conn.Query("SELECT idx, ts, grp FROM "+changeTable+" WHERE idx > ? ORDER BY idx LIMIT ?",
		[]driver.Value{int64(min(after, math.MaxInt64)), int64(limit)})
	if err != nil {
		return nil, fmt.Errorf("read the change queue: %w", err)
	}
	defer rows.Close()
	var out []ChangeGroup
	vals := make([]driver.Value, 3)
	for {
		if err := rows.Next(vals); err != nil {
			if err == io.EOF {
				return out, nil
			}
			return nil, fmt.Errorf("read the change queue: %w", err)
		}
		idx, _ := vals[0].(int64)
		ts, _ := vals[1].(int64)
		grp, _ := vals[2].([]byte)
		out = append(out, ChangeGroup{Index: uint64(idx), TimestampMs: ts, JSON: append([]byte(nil), grp...)})
	}
}

// PruneChanges deletes the queued groups with an index at or below through that were committed before
// keepSinceMs (unix milliseconds; math.MaxInt64 ignores their age), and returns how many it deleted.
// Unless through is math.MaxUint64 (pruning by age alone), through is what was delivered: it is recorded,
// so that a restarted node does not send again the delivered groups that age keeps.
func (d *DB) PruneChanges(through uint64, keepSinceMs int64) (int64, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		return 0, errClosed
	}
	w := d.w
	if w.capture == nil || through == 0 {
		return 0, nil
	}
	t := int64(min(through, math.MaxInt64))
	delivered := int64(0)
	if through != math.MaxUint64 {
		delivered = t
	}
	// The highest index deleted, so that a reader asking for older groups learns they are gone.
	top, err := w.queryInt("SELECT coalesce(max(idx), 0) FROM "+changeTable+" WHERE idx <= ? AND ts < ?", t, keepSinceMs)
	if err != nil {
		return 0, err
	}
	if top == 0 && delivered <= w.capture.delivered {
		return 0, nil // nothing to delete, nothing new to record: no write transaction
	}
	if err := w.exec("BEGIN"); err != nil {
		return 0, err
	}
	w.internal = true
	_, err = w.conn.Exec("DELETE FROM "+changeTable+" WHERE idx <= ?", []driver.Value{top})
	n := w.counters.changes()
	if err == nil {
		_, err = w.conn.Exec("UPDATE "+changeStateTable+" SET pruned = max(pruned, ?), delivered = max(delivered, ?) WHERE id = 1",
			[]driver.Value{top, delivered})
	}
	w.internal = false
	if err == nil {
		err = w.exec("COMMIT")
	}
	if err != nil {
		d.abort()
		return 0, fmt.Errorf("prune the change queue: %w", err)
	}
	w.capture.queued -= n
	w.capture.delivered = max(w.capture.delivered, delivered)
	return n, nil
}

// ChangeStats describes the change queue (zero without capture).
func (d *DB) ChangeStats() (ChangeQueueStats, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		return ChangeQueueStats{}, errClosed
	}
	w := d.w
	if w.capture == nil {
		return ChangeQueueStats{}, nil
	}
	first, err := w.queryInt("SELECT coalesce(min(idx), 0) FROM " + changeTable)
	if err != nil {
		return ChangeQueueStats{}, err
	}
	last, err := w.queryInt("SELECT coalesce(max(idx), 0) FROM " + changeTable)
	if err != nil {
		return ChangeQueueStats{}, err
	}
	pruned, err := w.queryInt("SELECT pruned FROM " + changeStateTable + " WHERE id = 1")
	if err != nil {
		return ChangeQueueStats{}, err
	}
	delivered, err := w.queryInt("SELECT delivered FROM " + changeStateTable + " WHERE id = 1")
	if err != nil {
		return ChangeQueueStats{}, err
	}
	return ChangeQueueStats{Length: w.capture.queued, First: uint64(first), Last: uint64(last), Pruned: uint64(pruned),
		Delivered: uint64(delivered)}, nil
}

// queryInt runs one of the writer's own queries that returns one integer.
func (w *writer) queryInt(sql string, args ...any) (int64, error) {
	w.internal = true
	defer func() { w.internal = false }()
	vals := make([]driver.Value, len(args))
	for i, a := range args {
		vals[i] = a
	}
	rows, err := w.conn.Query(sql, vals)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	n, _ := dest[0].(int64)
	return n, nil
}
