package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/nodecall"
)

// maxLoadSize bounds a gzipped SQLite file loaded through the log; larger databases are booted into a
// single node (/boot) and reach others as snapshots.
const maxLoadSize = 256 << 20

// ErrNotSingleNode refuses /boot on a cluster of more than one node.
var ErrNotSingleNode error = errcode.ErrNotSingleNode

// ErrLoadTooLarge refuses a load the log cannot carry.
var ErrLoadTooLarge error = errcode.New(errcode.TooLarge, fmt.Sprintf("database too large to load through the log (%d MiB compressed at most); boot it into a single node with /boot, then add nodes", maxLoadSize>>20))

// Backup writes a backup of this node's database.
func (s *Store) Backup(ctx context.Context, w io.Writer, opts db.BackupOptions) error {
	return s.db.Backup(ctx, w, opts)
}

// LeaderBackup streams the leader's backup (the follower side of a forwarded /db/backup).
func (s *Store) LeaderBackup(ctx context.Context, req *command.BackupRequest) (io.ReadCloser, error) {
	return s.calls.StreamFromLeader(ctx, nodecall.Backup, req)
}

// BackupFormat maps rqlite's fmt parameter.
func BackupFormat(name string) db.BackupFormat {
	switch name {
	case "sql":
		return db.BackupSQL
	case "delete":
		return db.BackupDelete
	}
	return db.BackupBinary
}

func (s *Store) serveBackup(ctx context.Context, req []byte, w io.Writer) error {
	var br command.BackupRequest
	if err := proto.Unmarshal(req, &br); err != nil {
		return fmt.Errorf("decode backup request: %w", err)
	}
	if err := nodecall.Authorize(s.cfg.Auth, br.GetCredentials(), "back up the database", auth.Backup); err != nil {
		return err
	}
	if !s.IsLeader() {
		return ErrNotLeader
	}
	return s.Backup(ctx, w, db.BackupOptions{Format: BackupFormat(br.GetFormat()), Vacuum: br.GetVacuum(), Tables: br.GetTables()})
}

// GzipLoad compresses a SQLite file for Load, refusing one the log cannot carry.
func GzipLoad(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() > maxLoadSize {
		return nil, ErrLoadTooLarge
	}
	return buf.Bytes(), nil
}

// Load replaces the whole database, on every node, with a SQLite file (gzipped by GzipLoad), through the
// log. Only the leader can; others get ErrNotLeader.
func (s *Store) Load(ctx context.Context, gzipped []byte) (uint64, error) {
	if !s.IsLeader() {
		return 0, ErrNotLeader
	}
	if len(gzipped) > maxLoadSize {
		return 0, ErrLoadTooLarge
	}
	id := requestIDs.Add(1)
	data, err := proto.Marshal(&command.Command{Type: command.Command_TYPE_LOAD, Proposer: s.cluster.RaftID(), Id: id, Load: gzipped})
	if err != nil {
		return 0, err
	}
	r, err := s.node.Propose(ctx, data, id)
	if err != nil {
		return 0, err
	}
	if res := r.Value.(applyResult); res.err != "" {
		return r.Index, errors.New(res.err)
	}
	return r.Index, nil
}

// ForwardLoad sends a load to the leader.
func (s *Store) ForwardLoad(ctx context.Context, gzipped []byte) error {
	_, err := s.calls.CallLeader(ctx, nodecall.Load, &command.LoadRequest{Gzipped: gzipped})
	return err
}

func (s *Store) serveLoad(ctx context.Context, req []byte) error {
	var lr command.LoadRequest
	if err := proto.Unmarshal(req, &lr); err != nil {
		return fmt.Errorf("decode load request: %w", err)
	}
	if err := nodecall.Authorize(s.cfg.Auth, lr.GetCredentials(), "load databases", auth.Load); err != nil {
		return err
	}
	_, err := s.Load(ctx, lr.GetGzipped())
	return err
}

// errBadLoad marks a LOAD entry whose bytes do not decompress: the same on every node.
var errBadLoad = errors.New("load: corrupt compressed database")

// gunzipTo writes the SQLite file a LOAD entry carries to path.
func gunzipTo(path string, gzipped []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzipped))
	if err == nil {
		_, err = io.Copy(f, zr)
		if err != nil && !isWriteError(err) {
			err = fmt.Errorf("%w: %v", errBadLoad, err)
		}
	} else {
		err = fmt.Errorf("%w: %v", errBadLoad, err)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// isWriteError tells a failing disk (to retry) from bad data (to refuse).
func isWriteError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// bootMarker exists while a booted database is in place but the log has not yet been compacted past it:
// until then, a node joining could be sent the log instead of the booted data.
func (s *Store) bootMarker() string { return filepath.Join(s.cfg.DataDir, "boot-pending") }

type bootRequest struct {
	path string
	done chan error
}

// Boot replaces the database of a single-node cluster with the SQLite file at path, without the log (at
// the speed of the disk, whatever the size), then compacts the log so that nodes added later receive the
// booted database as a snapshot.
func (s *Store) Boot(ctx context.Context, path string) error {
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if len(s.cluster.Members().List()) != 1 {
		return ErrNotSingleNode
	}
	r := bootRequest{path: path, done: make(chan error, 1)}
	select {
	case s.apply.bootc <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopc:
		return ErrStopped
	}
	// Once the apply loop has the request it runs to the end: wait for it even past ctx, since returning
	// early would leave the caller deleting the file being booted.
	select {
	case err := <-r.done:
		return err
	case <-s.stopc:
		return ErrStopped
	}
}

// boot runs on the apply loop, between entries.
func (s *Store) boot(path string) error {
	// Checked again here, in order with the log: a member added since the request was accepted would be
	// sent the log, not the booted data.
	if len(s.cluster.Members().List()) != 1 {
		return ErrNotSingleNode
	}
	idx, term, _ := s.applied.Position()
	if err := os.WriteFile(s.bootMarker(), nil, 0o600); err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	if err := cluster.SyncPath(s.cfg.DataDir); err != nil {
		return err
	}
	if err := s.db.Load(path, idx, term); err != nil {
		os.Remove(s.bootMarker())
		return fmt.Errorf("boot: %w", err)
	}
	return s.finishBoot()
}

// finishBoot compacts the log up to the booted database, so that a node added later gets it as a
// snapshot rather than the log that led to the old database, and drops the marker.
func (s *Store) finishBoot() error {
	if err := s.compactAll(); err != nil {
		return fmt.Errorf("boot: compact log: %w", err)
	}
	if err := os.Remove(s.bootMarker()); err != nil && !os.IsNotExist(err) {
		return err
	}
	s.log.Info("booted database", "index", s.applied.Index())
	return nil
}
