package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/fsm"
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

func (h *handler) serveBackup(ctx context.Context, req []byte, w io.Writer) error {
	s := (*Store)(h)
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
	if s.restorePending() {
		return 0, errRestoring
	}
	return s.load(ctx, gzipped)
}

func (s *Store) load(ctx context.Context, gzipped []byte) (uint64, error) {
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
	if res := r.Value.(fsm.Result); res.Err != "" {
		return r.Index, errors.New(res.Err)
	}
	return r.Index, nil
}

// ForwardLoad sends a load to the leader.
func (s *Store) ForwardLoad(ctx context.Context, gzipped []byte) error {
	_, err := s.calls.CallLeader(ctx, nodecall.Load, &command.LoadRequest{Gzipped: gzipped})
	return err
}

func (h *handler) serveLoad(ctx context.Context, req []byte) error {
	s := (*Store)(h)
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

// Boot replaces the database of a single-node cluster with the SQLite file at path, without the log (at
// the speed of the disk, whatever the size), then compacts the log so that nodes added later receive the
// booted database as a snapshot.
func (s *Store) Boot(ctx context.Context, path string) error {
	if s.restorePending() {
		return errRestoring
	}
	if !s.IsLeader() {
		return ErrNotLeader
	}
	if len(s.cluster.Members().List()) != 1 {
		return ErrNotSingleNode
	}
	return s.fsm.Boot(ctx, path)
}
