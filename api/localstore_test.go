package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/cdc"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/extension"
	"github.com/raftlite/raftlite/store"
)

// localStore is a stand-in for a node in the API's tests: a single-node cluster without Raft. Requests
// run on a real database (package db), so results are exactly a node's; each write takes the next "log
// index", as a one-node log would. What only a cluster does (forwarding, membership changes, loads of
// other nodes) answers as a one-node cluster does.
type localStore struct {
	db       *db.DB
	dir      string
	httpAddr string

	mu        sync.Mutex // one write at a time, as the log orders them
	index     uint64     // the last index written
	snapIndex uint64     // the index of the last snapshot
}

const localRaftAddr = "127.0.0.1:4002"

func newLocalStore(t testing.TB, httpAddr string) *localStore {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "snapshots"), 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(filepath.Join(dir, "db.sqlite"), db.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &localStore{db: d, dir: dir, httpAddr: httpAddr}
}

func (l *localStore) apply(req *command.Request, env db.Env) (store.Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	res, err := l.db.Apply([]db.Op{{Index: l.index, Term: 1, Request: req, Env: env}})
	if err != nil {
		return store.Response{}, err
	}
	return store.Response{Results: res[0].Results, Error: res[0].Error, RaftIndex: l.index}, nil
}

func (l *localStore) Execute(_ context.Context, req *command.Request, env db.Env) (store.Response, error) {
	return l.apply(req, env)
}

func (l *localStore) Query(ctx context.Context, req *command.Request, opts store.ReadOptions, env db.Env) (store.Response, error) {
	if opts.MinIndex > 0 {
		if err := l.WaitApplied(ctx, opts.MinIndex); err != nil {
			return store.Response{}, fmt.Errorf("waiting to apply index %d: %w", opts.MinIndex, err)
		}
	}
	var raftIndex uint64
	if opts.Level == store.LevelStrong {
		// The read's place in the log, as a strong read takes one.
		mark, err := l.apply(nil, env)
		if err != nil {
			return store.Response{}, err
		}
		raftIndex = mark.RaftIndex
	}
	res, err := l.db.Query(ctx, req)
	if err != nil {
		return store.Response{}, err
	}
	return store.Response{Results: res.Results, Error: res.Error, RaftIndex: raftIndex}, nil
}

func (l *localStore) Forward(context.Context, *command.ForwardRequest) (store.Response, error) {
	return store.Response{}, errors.New("a one-node cluster forwards nothing")
}

func (l *localStore) ReadOnly(ctx context.Context, req *command.Request) (bool, error) {
	return l.db.ReadOnly(ctx, req)
}

func (l *localStore) CheckSQL(ctx context.Context, sql string) error { return l.db.Check(ctx, sql) }

func (l *localStore) Load(_ context.Context, gzipped []byte) (uint64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gzipped))
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return 0, err
	}
	path := filepath.Join(l.dir, "snapshots", "load.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return 0, err
	}
	defer os.Remove(path)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.index++
	return l.index, l.db.Load(path, l.index, 1)
}

func (l *localStore) ForwardLoad(context.Context, []byte) error {
	return errors.New("a one-node cluster forwards nothing")
}

func (l *localStore) ValidateDatabase(data []byte) error { return l.db.Validate(data) }

func (l *localStore) Boot(_ context.Context, path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.db.Load(path, l.index, 1)
}

func (l *localStore) Backup(ctx context.Context, w io.Writer, opts db.BackupOptions) error {
	return l.db.Backup(ctx, w, opts)
}

func (l *localStore) LeaderBackup(context.Context, *command.BackupRequest) (io.ReadCloser, error) {
	return nil, errors.New("a one-node cluster forwards nothing")
}

func (l *localStore) Snapshot(context.Context, uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.index <= l.snapIndex {
		return store.ErrNothingNew
	}
	l.snapIndex = l.index
	_, err := l.db.Sync()
	return err
}

func (l *localStore) Checkpoint() error { return l.db.Checkpoint() }

// Remove and Stepdown fail as the cluster's do (package cluster), with the same codes. The node "slow"
// never finishes going, so that a request's timeout shows; "buggy" fails without a code, as only a bug
// would.
func (l *localStore) Remove(ctx context.Context, nodeID string) error {
	switch nodeID {
	case "n1":
		return errcode.New(errcode.Conflict, "cannot remove n1: it is the only voter")
	case "slow":
		<-ctx.Done()
		return fmt.Errorf("remove %s: %w", nodeID, ctx.Err())
	case "buggy":
		return errors.New("something nobody foresaw")
	}
	return unknownNode(nodeID)
}

func (l *localStore) Stepdown(_ context.Context, nodeID string, _ bool) error {
	switch nodeID {
	case "":
		return errcode.New(errcode.Conflict, "no other voter to hand leadership to")
	case "n1":
		return errcode.New(errcode.Conflict, "cannot step down to the current Leader")
	}
	return unknownNode(nodeID)
}

func unknownNode(nodeID string) error {
	return errcode.New(errcode.UnknownNode, fmt.Sprintf("node %q is not a member of the cluster (members: n1)", nodeID))
}

func (l *localStore) url() string { return "http://" + l.httpAddr }

func (l *localStore) Status() store.Status {
	l.mu.Lock()
	index := l.index
	l.mu.Unlock()
	dbSize, walSize := l.db.Size()
	return store.Status{
		NodeID: "n1", RaftID: 1, ClusterID: 1, RaftAddr: localRaftAddr, HTTPURL: l.url(), Open: true, Ready: true,
		State: "Leader", Voter: true, Leader: store.LeaderInfo{NodeID: "n1", RaftAddr: localRaftAddr, HTTPURL: l.url()},
		Term: 1, CommitIndex: index, AppliedIndex: index, DBApplied: l.db.State().AppliedIndex, LastLogIndex: index,
		DBSize: dbSize, WALSize: walSize, Members: l.Members(), DataDir: l.dir, DBPath: l.db.Path(),
		HeartbeatTimeout: time.Second, ElectionTimeout: time.Second,
		Extensions: extension.Set{Dir: filepath.Join(l.dir, "extensions")},
	}
}

func (l *localStore) Leader() (store.LeaderInfo, bool) { return l.Status().Leader, true }

func (l *localStore) Members() []store.Member {
	return []store.Member{{NodeID: "n1", RaftID: 1, RaftAddr: localRaftAddr, HTTPAddr: l.url(), Voter: true, WantsVote: true}}
}

func (l *localStore) IsLeader() bool { return true }

func (l *localStore) NodeMeta(context.Context, string) (*command.NodeMetaResponse, error) {
	st := l.Status()
	return &command.NodeMetaResponse{HttpAddr: l.url(), CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex,
		Version: "test", LeaderRaftId: 1, ClusterId: 1}, nil
}

func (l *localStore) WaitApplied(ctx context.Context, index uint64) error {
	for {
		l.mu.Lock()
		done := l.index >= index
		l.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (l *localStore) Fault() error     { return nil }
func (l *localStore) HTTPAddr() string { return l.httpAddr }
func (l *localStore) DataDir() string  { return l.dir }

// The stand-in captures no changes.
func (l *localStore) CDC() store.CDCStatus { return store.CDCStatus{Stats: &cdc.Stats{}} }

func (l *localStore) Counters() store.Counters { return store.Counters{} }

func (l *localStore) SQLiteInfo(ctx context.Context) db.Info { return db.Info{} }
func (l *localStore) PullChanges(context.Context, uint64, int, time.Duration) ([]byte, error) {
	return nil, store.ErrNoCDC
}

var _ Store = (*localStore)(nil)
