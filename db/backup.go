package db

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// BackupFormat is the form of a backup (rqlite's fmt parameter).
type BackupFormat int

const (
	BackupBinary BackupFormat = iota // the SQLite file, in WAL mode like the node's own
	BackupDelete                     // the SQLite file in rollback-journal (DELETE) mode
	BackupSQL                        // SQL text that recreates the database
)

// ErrInvalidBackupFormat reports vacuum asked of a non-file backup.
var ErrInvalidBackupFormat = errors.New("invalid backup format")

// BackupOptions qualify a backup.
type BackupOptions struct {
	Format BackupFormat
	Vacuum bool     // rebuild the file compactly (binary formats only; the result is in DELETE mode)
	Tables []string // SQL format: only these tables
}

// Backup writes a consistent backup of the database to w. File backups hold the user's data only: the
// node's own state table is dropped from the copy.
func (d *DB) Backup(ctx context.Context, w io.Writer, opts BackupOptions) error {
	if opts.Format == BackupSQL {
		if opts.Vacuum {
			return ErrInvalidBackupFormat
		}
		return d.Dump(ctx, w, opts.Tables)
	}
	_, err := d.BackupFile(ctx, w, opts)
	return err
}

// BackupFile writes a consistent file backup (binary or delete format) to w, and returns the state of the
// database it was taken from, as of the backup's instant. Writes go on while it runs: the copy reads one
// snapshot of the database (see Copy), and the rest works on the copy.
func (d *DB) BackupFile(ctx context.Context, w io.Writer, opts BackupOptions) (State, error) {
	if opts.Format == BackupSQL {
		return State{}, ErrInvalidBackupFormat
	}
	f, err := os.CreateTemp(filepath.Dir(d.path), "backup-*.db")
	if err != nil {
		return State{}, fmt.Errorf("backup: %w", err)
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	st, err := d.Copy(ctx, path)
	if err != nil {
		return State{}, err
	}
	// secure_delete zeroes the freed pages, so no trace of the state table is left in the file.
	post := "PRAGMA secure_delete=ON; DROP TABLE " + stateTable + "; DROP TABLE IF EXISTS " + changeTable +
		"; DROP TABLE IF EXISTS " + changeStateTable
	if opts.Format == BackupDelete || opts.Vacuum {
		post += "; PRAGMA journal_mode=DELETE"
	}
	if opts.Vacuum {
		post += "; VACUUM"
	}
	conn, err := openConnWith(uriPath(path), d.opts.Extensions)
	if err != nil {
		return State{}, fmt.Errorf("backup: %w", err)
	}
	_, err = conn.Exec(post, nil)
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return State{}, fmt.Errorf("backup: prepare copy: %w", err)
	}
	f, err = os.Open(path)
	if err != nil {
		return State{}, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return State{}, fmt.Errorf("backup: %w", err)
	}
	return st, nil
}
