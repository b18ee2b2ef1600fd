package api

import (
	"context"
	"io"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/store"
)

// Store is the node as the API uses it. *store.Store implements it; the API's own tests use a stand-in
// that runs requests on a local database, without Raft.
type Store interface {
	// Requests. Execute and Query answer store.ErrNotLeader when the leader must serve them; Forward then
	// sends them there.
	Execute(ctx context.Context, req *command.Request, env db.Env) (store.Response, error)
	Query(ctx context.Context, req *command.Request, opts store.ReadOptions, env db.Env) (store.Response, error)
	Forward(ctx context.Context, fr *command.ForwardRequest) (store.Response, error)
	// ReadOnly reports whether a request changes nothing (and so may be served as a read).
	ReadOnly(ctx context.Context, req *command.Request) (bool, error)
	// CheckSQL compiles sql without running it.
	CheckSQL(ctx context.Context, sql string) error

	// Whole databases.
	Load(ctx context.Context, gzipped []byte) (uint64, error)
	ForwardLoad(ctx context.Context, gzipped []byte) error
	ValidateDatabase(data []byte) error
	Boot(ctx context.Context, path string) error
	Backup(ctx context.Context, w io.Writer, opts db.BackupOptions) error
	LeaderBackup(ctx context.Context, req *command.BackupRequest) (io.ReadCloser, error)
	Snapshot(ctx context.Context, trailing uint64) error
	Checkpoint() error

	// The cluster.
	Remove(ctx context.Context, nodeID string) error
	Stepdown(ctx context.Context, nodeID string, wait bool) error
	Status() store.Status
	Leader() (store.LeaderInfo, bool)
	Members() []store.Member
	IsLeader() bool
	NodeMeta(ctx context.Context, raftAddr string) (*command.NodeMetaResponse, error)
	WaitApplied(ctx context.Context, index uint64) error
	Fault() error
	HTTPAddr() string
	DataDir() string

	// Counters and SQLite's own settings, for /debug/vars and /status.
	Counters() store.Counters
	SQLiteInfo(ctx context.Context) db.Info

	// Change data capture.
	CDC() store.CDCStatus
	PullChanges(ctx context.Context, after uint64, limit int, wait time.Duration) ([]byte, error)
}

var _ Store = (*store.Store)(nil)
