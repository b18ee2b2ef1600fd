package store

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
)

// testNode is one in-process node on loopback.
type testNode struct {
	t    *testing.T
	dir  string
	addr string
	cfg  Config
	s    *Store
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func testLogger(t *testing.T, name string) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("STORE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test_node", name)
}

func newTestNode(t *testing.T, name string, mod func(*Config)) *testNode {
	t.Helper()
	n := &testNode{t: t, dir: filepath.Join(t.TempDir(), name), addr: freeAddr(t)}
	n.cfg = Config{
		DataDir: n.dir, NodeID: name, RaftAddr: n.addr, HTTPAddr: "127.0.0.1:1", Voter: true,
		HeartbeatTimeout: 500 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		BootstrapGrace: 300 * time.Millisecond, JoinInterval: 200 * time.Millisecond, JoinAttempts: 50,
		SnapshotInterval: 100 * time.Millisecond, Logger: testLogger(t, name), RaftLogger: raftTestLogger(name),
	}
	if mod != nil {
		mod(&n.cfg)
	}
	n.start()
	t.Cleanup(func() { n.stop() })
	return n
}

func (n *testNode) start() {
	n.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", n.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		n.t.Fatal(err)
	}
	cfg := n.cfg
	cfg.Listener = ln
	s, err := Open(cfg)
	if err != nil {
		n.t.Fatalf("open %s: %v", n.cfg.NodeID, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		s.Close(ctx)
		n.t.Fatalf("start %s: %v", n.cfg.NodeID, err)
	}
	n.s = s
}

func (n *testNode) stop() {
	if n.s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.s.Close(ctx)
		n.s = nil
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func leaderOf(t *testing.T, nodes ...*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, "a leader", 10*time.Second, func() bool {
		for _, n := range nodes {
			if n.s != nil && n.s.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

func execSQL(t *testing.T, n *testNode, sqls ...string) Response {
	t.Helper()
	stmts := make([]*command.Statement, len(sqls))
	for i, s := range sqls {
		stmts[i] = &command.Statement{Sql: s}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := n.s.Execute(ctx, &command.Request{Statements: stmts}, db.Env{NowUnixMs: time.Now().UnixMilli()})
	if err != nil {
		t.Fatalf("execute %v on %s: %v", sqls, n.cfg.NodeID, err)
	}
	for i, r := range resp.Results {
		if r.Exec == nil || r.Exec.Error != "" {
			t.Fatalf("execute %q: %+v %+v", sqls[i], r, r.Exec)
		}
	}
	return resp
}

func queryLocal(t *testing.T, n *testNode, sql string) [][]any {
	t.Helper()
	res, err := n.s.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY,
		Statements: []*command.Statement{{Sql: sql}}}, ReadOptions{Level: LevelNone}, db.Env{})
	if err != nil {
		t.Fatalf("query %q on %s: %v", sql, n.cfg.NodeID, err)
	}
	r := res.Results[0].Rows
	if r == nil || r.Error != "" {
		t.Fatalf("query %q on %s: %+v", sql, n.cfg.NodeID, res.Results[0])
	}
	return r.Values
}

func countRows(t *testing.T, n *testNode, table string) int64 {
	return queryLocal(t, n, "SELECT count(*) FROM "+table)[0][0].(int64)
}

var _ = fmt.Sprint

func raftTestLogger(name string) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("STORE_TEST_LOG") == "raft" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test_node", name)
}

func mustListen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
