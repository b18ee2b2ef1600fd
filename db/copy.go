package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/raftlite/raftlite/sqlscan"
)

func splitSQL(sql string) []string {
	stmts := sqlscan.Split(sql)
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = s.Text
	}
	return out
}

// Copy writes a consistent copy of the database (as of one instant, while writes go on) to a new file at
// dst, fsyncs it, and returns the state the copy holds.
func (d *DB) Copy(ctx context.Context, dst string) (State, error) {
	d.swap.RLock()
	defer d.swap.RUnlock()
	src, err := d.readers.get(ctx)
	if err != nil {
		return State{}, err
	}
	defer d.readers.put(src)
	if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
		return State{}, fmt.Errorf("copy database to %s: %w", dst, err)
	}
	out, err := openConn(uriPath(dst))
	if err != nil {
		return State{}, fmt.Errorf("copy database to %s: %w", dst, err)
	}
	b, err := out.Backup("main", src.conn, "main")
	if err == nil {
		// One step holds one read transaction on the source for the whole copy: a consistent snapshot.
		_, err = b.Step(-1)
		if ferr := b.Finish(); err == nil {
			err = ferr
		}
	}
	var st State
	if err == nil {
		st, err = readState(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncFile(dst)
	}
	if err != nil {
		os.Remove(dst)
		return State{}, fmt.Errorf("copy database to %s: %w", dst, err)
	}
	return st, nil
}

// Install replaces the database with the file at src (a Copy from another node), moving it into place,
// provided it holds at least the entries up to minApplied. Readers wait while the file is swapped.
func (d *DB) Install(src string, minApplied uint64) error {
	st, err := inspect(src)
	if err != nil {
		return fmt.Errorf("install database from %s: %w", src, err)
	}
	if st.AppliedIndex < minApplied {
		return fmt.Errorf("install database from %s: it holds entries up to %d, short of %d", src, st.AppliedIndex, minApplied)
	}
	return d.replace(src)
}

// ErrUnusable reports that the database could not be reopened after a failed swap: the node cannot go on.
var ErrUnusable = errors.New("database unusable")

// Load replaces the database with a user's SQLite file at src, as the log entry at index and term: the
// file's own bookkeeping (if it has any, e.g. a backup of another cluster) is overwritten with this node's,
// before the file is moved into place, so that a crash at any point leaves a consistent database.
func (d *DB) Load(src string, index, term uint64) error {
	if _, err := inspect(src); err != nil {
		return fmt.Errorf("load database: %w", err)
	}
	w, err := openWriter(src, d.opts.ForeignKeys, d.opts.Extensions)
	if err != nil {
		return fmt.Errorf("load database: %w", badFile(err))
	}
	err = w.internalExec(w.setApplied, int64(index), int64(term), int64(index))
	if err == nil {
		err = w.internalExec(w.setMembership, d.State().Membership)
	}
	if err == nil {
		// A user's file brings no changes to deliver (a load is not captured, as in rqlite).
		err = w.exec("DROP TABLE IF EXISTS " + changeTable + "; DROP TABLE IF EXISTS " + changeStateTable)
	}
	if err == nil {
		err = w.exec("PRAGMA journal_mode=WAL; PRAGMA wal_checkpoint(TRUNCATE)")
	}
	if cerr := w.close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncFile(src)
	}
	if err != nil {
		return fmt.Errorf("load database: %w", badFile(err))
	}
	return d.replace(src)
}

// ErrNotADatabase reports a file to install or load that SQLite cannot use. Unlike a failing disk, that is
// a property of the bytes, the same on every node.
var ErrNotADatabase = errors.New("not a usable SQLite database")

// badFile wraps err as ErrNotADatabase when SQLite says the file itself is at fault.
func badFile(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt) {
		return fmt.Errorf("%w: %v", ErrNotADatabase, err)
	}
	return err
}

// Inspect reads the state of the database at path without changing anything.
func Inspect(path string) (State, error) { return inspect(path) }

// inspect checks that path is a SQLite database this package can open.
func inspect(path string) (State, error) {
	conn, err := openConn(readerDSN(path, false))
	if err != nil {
		return State{}, badFile(err)
	}
	defer conn.Close()
	if _, err := conn.Exec("SELECT count(*) FROM sqlite_master", nil); err != nil {
		return State{}, badFile(err)
	}
	st, err := readState(conn)
	if err != nil {
		// A user's file has no bookkeeping of ours yet; Load adds it.
		return State{}, nil
	}
	return st, nil
}

// replace swaps src in as the database file. The old database is first checkpointed completely, so that
// deleting its WAL loses nothing: whichever file is in place after a crash is whole. If the swap fails
// midway, the writer is reopened on whichever file is in place.
func (d *DB) replace(src string) (err error) {
	d.lockForSwap()
	defer d.swap.Unlock()
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.w == nil {
		return errClosed
	}
	defer func() {
		if err != nil && d.w == nil {
			if rerr := d.openWriter(); rerr != nil {
				err = fmt.Errorf("%w: %v (after %v)", ErrUnusable, rerr, err)
			}
		}
	}()
	d.readers.closeAll()
	d.queue.close()
	if err := d.w.exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint before replacing %s: %w", d.path, err)
	}
	d.wstmts.close()
	if err := d.w.close(); err != nil {
		return fmt.Errorf("close %s before replacing it: %w", d.path, err)
	}
	d.w = nil
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(d.path + suffix); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("replace %s: %w", d.path, err)
		}
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(src + suffix)
	}
	if err := os.Rename(src, d.path); err != nil {
		return fmt.Errorf("replace %s: %w", d.path, err)
	}
	if err := syncDir(filepath.Dir(d.path)); err != nil {
		return err
	}
	return d.openWriter()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Validate checks that data is a SQLite database this package can load, without writing it anywhere.
func (d *DB) Validate(data []byte) error {
	conn, err := openConn(":memory:")
	if err != nil {
		return err
	}
	defer conn.Close()
	img := data
	if len(data) > 19 && (data[18] == 2 || data[19] == 2) {
		// A WAL-mode file cannot be opened from memory (there is no WAL beside it): check it as the
		// rollback-journal file it is otherwise. Deserialize copies, so the caller's bytes stay as they are.
		img = append([]byte(nil), data...)
		img[18], img[19] = 1, 1
	}
	if err := conn.Deserialize(img, "main"); err != nil {
		return fmt.Errorf("%w: %v", ErrNotADatabase, err)
	}
	if _, err := conn.Exec("SELECT count(*) FROM sqlite_master", nil); err != nil {
		return fmt.Errorf("%w: %v", ErrNotADatabase, err)
	}
	return nil
}
