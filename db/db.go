package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Options configure a DB.
type Options struct {
	ForeignKeys bool // enforce foreign key constraints (-fk)
	MaxReaders  int  // size of the read-only connection pool; 0 means 256
	// MaxResultBytes bounds the rows a read request may hold in memory (about: values plus overhead);
	// beyond it the statement fails with a clear error instead of the node running out of memory.
	// 0 means DefaultMaxResultBytes; negative, no limit.
	MaxResultBytes int64
	// SlowApply: a statement applied from the log that takes this long or longer is logged, with its
	// text and duration (every write waits behind it). 0: none is.
	SlowApply time.Duration
	// Capture, if set, captures the row changes of every applied entry into the change queue.
	Capture *Capture
	// Extensions are SQLite extensions (shared libraries) every connection loads, in this order: the
	// writer and every reader, including those opened after the file is replaced. ExtensionsDigest
	// identifies them (see ExtensionMissingError).
	Extensions       []string
	ExtensionsDigest string
	Logger           *slog.Logger
}

// State is the node's bookkeeping stored in the database: the last applied log entry, and the cluster
// membership (an encoded command.Membership) as of that entry.
type State struct {
	AppliedIndex uint64
	AppliedTerm  uint64
	Membership   []byte
	// DataIndex is the index of the last applied entry that could change the data: a request, failed or
	// not, or a load (not reads, no-ops or membership changes). It is the same on every replica for the
	// same log, which lets automatic backups tell unchanged data from changed across leaders and restarts.
	DataIndex uint64
}

// DB is one SQLite database file with one writer connection and a pool of readers.
type DB struct {
	path string
	opts Options
	log  *slog.Logger

	// swap is held shared by every reader and by copies, and exclusively while the file is replaced.
	swap    sync.RWMutex
	readers *pool
	// abortReads ends when the file is about to be replaced; reads started before then stop (startRead).
	abortMu     sync.Mutex
	abortReads  context.Context
	cancelReads context.CancelFunc

	wmu    sync.Mutex // serialises use of the writer
	w      *writer
	wstmts *stmtCache

	state atomic.Pointer[State]
	// rwDSN is the writer's connection string, for /status.
	rwDSN atomic.Pointer[string]
	// applying is the statement the writer runs for a committed entry now (Applying).
	applying atomic.Pointer[Applying]
	// queue reads the change queue (changequeue.go).
	queue queueReader
}

// Open opens (creating if needed) the database at path.
func Open(path string, opts Options) (*DB, error) {
	if opts.MaxReaders <= 0 {
		opts.MaxReaders = 256
	}
	if opts.MaxResultBytes == 0 {
		opts.MaxResultBytes = DefaultMaxResultBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	d := &DB{path: abs, opts: opts, log: opts.Logger}
	d.abortReads, d.cancelReads = context.WithCancel(context.Background())
	if err := d.openWriter(); err != nil {
		return nil, err
	}
	d.readers = newPool(abs, opts.ForeignKeys, opts.MaxReaders, opts.MaxResultBytes, opts.Extensions)
	return d, nil
}

func (d *DB) openWriter() error {
	w, err := openWriter(d.path, d.opts.ForeignKeys, d.opts.Extensions)
	if err != nil {
		return err
	}
	w.extensionsDigest = d.opts.ExtensionsDigest
	d.rwDSN.Store(&w.dsn)
	w.internal = true
	st, err := readState(w.conn)
	w.internal = false
	if err != nil {
		w.close()
		return fmt.Errorf("read state of %s: %w", d.path, err)
	}
	if err := d.attachCapture(w); err != nil {
		w.close()
		return fmt.Errorf("open %s: %w", d.path, err)
	}
	d.w, d.wstmts = w, newStmtCache(w.conn, 256)
	d.state.Store(&st)
	return nil
}

func readState(conn *sqlite3.SQLiteConn) (State, error) {
	// SELECT * reads a state table from before the data index too (a snapshot copied from an older node,
	// opened read-only, which cannot be given the column); its data index is then its applied index.
	rows, err := conn.QueryContext(context.Background(), "SELECT * FROM "+stateTable+" WHERE id = 1", nil)
	if err != nil {
		return State{}, err
	}
	defer rows.Close()
	cols := rows.Columns()
	dest := make([]driver.Value, len(cols))
	if err := rows.Next(dest); err != nil {
		return State{}, fmt.Errorf("no state row: %w", err)
	}
	var st State
	dataIndex := int64(-1)
	for i, c := range cols {
		switch c {
		case "applied_index":
			idx, _ := dest[i].(int64)
			st.AppliedIndex = uint64(idx)
		case "applied_term":
			term, _ := dest[i].(int64)
			st.AppliedTerm = uint64(term)
		case "membership":
			st.Membership, _ = dest[i].([]byte)
		case "data_index":
			dataIndex, _ = dest[i].(int64)
		}
	}
	st.DataIndex = st.AppliedIndex
	if dataIndex >= 0 {
		st.DataIndex = uint64(dataIndex)
	}
	return st, nil
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

// State returns the bookkeeping as of the last committed batch.
func (d *DB) State() State { return *d.state.Load() }

// Close closes every connection. The database stays on disk.
func (d *DB) Close() error {
	d.lockForSwap()
	defer d.swap.Unlock()
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.readers.closeAll()
	d.queue.close()
	if d.w == nil {
		return nil
	}
	d.wstmts.close()
	err := d.w.close()
	d.w = nil
	if err == nil {
		err = writeFingerprint(d.path)
	}
	return err
}

// Sync makes every committed batch durable and returns the state that is now safe from power loss. The
// writer normally commits with synchronous=NORMAL (no fsync per batch: the Raft log holds the entries);
// this is the barrier taken before the log may forget them.
func (d *DB) Sync() (State, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		return State{}, errClosed
	}
	st := d.State()
	err := d.w.exec("PRAGMA synchronous=FULL; BEGIN; UPDATE " + stateTable + " SET applied_index = applied_index WHERE id = 1; COMMIT")
	if rerr := d.w.exec("PRAGMA synchronous=NORMAL"); err == nil {
		err = rerr
	}
	if err != nil {
		d.w.exec("ROLLBACK")
		return State{}, fmt.Errorf("sync database %s: %w", d.path, err)
	}
	return st, nil
}

// Checkpoint copies the WAL into the database file as far as readers allow, keeping the WAL short.
func (d *DB) Checkpoint() error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		return errClosed
	}
	return d.w.exec("PRAGMA wal_checkpoint(PASSIVE)")
}

var errClosed = errors.New("database is closed")

// Size reports the bytes of the database file and of its WAL.
func (d *DB) Size() (db, wal int64) {
	if fi, err := os.Stat(d.path); err == nil {
		db = fi.Size()
	}
	if fi, err := os.Stat(d.path + "-wal"); err == nil {
		wal = fi.Size()
	}
	return db, wal
}
