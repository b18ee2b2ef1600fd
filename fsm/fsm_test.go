package fsm

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/raftlog"
	"github.com/raftlite/raftlite/raftnode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A one-node raft node feeding the state machine: what the state machine is given in a node, without the
// rest of one.
type harness struct {
	t    *testing.T
	dir  string
	d    *db.DB
	node *raftnode.Node
	fsm  *FSM
	rlog *raftlog.Log
	next uint64
}

func identify(data []byte) (uint64, uint64) {
	var c command.Command
	if proto.Unmarshal(data, &c) != nil {
		return 0, 0
	}
	return c.GetProposer(), c.GetId()
}

func start(t *testing.T, dir string, cfg Config) *harness {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rlog, err := raftlog.Open(filepath.Join(dir, "raft"), raftlog.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(filepath.Join(dir, "db.sqlite"), db.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := rlog.Snapshot()
	applied := raftnode.NewAppliedIndex(snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm(), snap.GetMetadata().GetConfState())
	h := &harness{t: t, dir: dir, d: d, rlog: rlog}
	h.node = raftnode.New(raftnode.Config{ID: 1, Tick: 10 * time.Millisecond, HeartbeatTicks: 1, ElectionTicks: 10, Log: rlog,
		Transport: nopSender{}, SnapDir: t.TempDir(), Identify: identify,
		ConfChange: func(rn *raft.RawNode, e *raftpb.Entry) raftnode.AppliedConf {
			var cc raftpb.ConfChange
			_ = proto.Unmarshal(e.GetData(), &cc)
			return raftnode.AppliedConf{Index: e.GetIndex(), CS: rn.ApplyConfChange(&cc)}
		},
		Fail: func(err error) { t.Errorf("node failed: %v", err) }, Logger: logger}, applied)
	cfg.DataDir, cfg.SnapDir, cfg.Logger = dir, t.TempDir(), logger
	cfg.Members = func() int { return 1 }
	cfg.Name = func(uint64) string { return "n1" }
	cfg.Restore = func([]byte, *raftpb.ConfState) error { return nil }
	cfg.Fail = func(err error) { t.Errorf("state machine failed: %v", err) }
	h.fsm = New(cfg, d, h.node, rlog)
	var peers []raft.Peer
	if last, _ := rlog.LastIndex(); last == 0 {
		peers = []raft.Peer{{ID: 1}}
	}
	if err := h.node.Start(peers); err != nil {
		t.Fatal(err)
	}
	h.fsm.Start()
	deadline := time.Now().Add(5 * time.Second)
	for !h.node.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h
}

func (h *harness) stop() {
	h.fsm.Stop()
	h.node.Stop()
	h.d.Close()
	h.rlog.Close()
}

type nopSender struct{}

func (nopSender) Send([]*raftpb.Message) {}

// exec proposes sql and returns what the state machine made of it.
func (h *harness) exec(sql string) Result {
	h.t.Helper()
	h.next++
	data, _ := proto.Marshal(&command.Command{Type: command.Command_TYPE_REQUEST, Proposer: 1, Id: h.next,
		NowUnixMs: time.Now().UnixMilli(), Request: &command.Request{Statements: []*command.Statement{{Sql: sql}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := h.node.Propose(ctx, data, h.next)
	if err != nil {
		h.t.Fatalf("propose %q: %v", sql, err)
	}
	return r.Value.(Result)
}

// Committed entries are applied in order; each proposer gets its statements' results, errors of the SQL
// included; the database records the last index applied, and a restart applies only what it lacks.
func TestApplyDeliversResultsAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	h := start(t, dir, Config{SnapshotInterval: time.Hour})
	h.exec("CREATE TABLE t (x)")
	for i := 0; i < 10; i++ {
		if r := h.exec("INSERT INTO t VALUES (1)"); r.Results[0].Exec == nil || r.Results[0].Exec.RowsAffected != 1 {
			t.Fatalf("insert: %+v", r)
		}
	}
	if r := h.exec("INSERT INTO nosuch VALUES (1)"); r.Results[0].Exec == nil || r.Results[0].Exec.Error == "" {
		t.Fatalf("an error of the SQL is the statement's result: %+v", r)
	}
	applied := h.d.State().AppliedIndex
	if applied != h.node.Applied().Index() || applied == 0 {
		t.Fatalf("database at %d, applied position %d", applied, h.node.Applied().Index())
	}
	h.stop()

	h = start(t, dir, Config{SnapshotInterval: time.Hour})
	defer h.stop()
	h.next = 1000
	h.exec("INSERT INTO t VALUES (2)")
	res, err := h.d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: []*command.Statement{{Sql: "SELECT count(*) FROM t"}}})
	if err != nil || res.Results[0].Rows.Values[0][0] != int64(11) {
		t.Fatalf("after a restart the table holds %v (%v): entries applied twice or lost", res.Results[0].Rows, err)
	}
}

// Once enough entries are applied the log is compacted behind the database, which is made durable first;
// a manual snapshot with nothing new says so.
func TestCompaction(t *testing.T) {
	h := start(t, t.TempDir(), Config{SnapshotThreshold: 10, TrailingLogs: 2, SnapshotInterval: 20 * time.Millisecond})
	defer h.stop()
	h.exec("CREATE TABLE t (x)")
	for i := 0; i < 30; i++ {
		h.exec("INSERT INTO t VALUES (1)")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if first, _ := h.rlog.FirstIndex(); first > 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the log was not compacted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	snap, _ := h.rlog.Snapshot()
	if got := snap.GetMetadata().GetIndex(); got > h.d.State().AppliedIndex {
		t.Fatalf("the log's snapshot at %d is ahead of the database at %d", got, h.d.State().AppliedIndex)
	}
	ctx := context.Background()
	if err := h.fsm.Snapshot(ctx, 0); err != nil && err != errNothingToSnapshot {
		t.Fatal(err)
	}
	if err := h.fsm.Snapshot(ctx, 0); err != errNothingToSnapshot {
		t.Fatalf("a second snapshot with nothing new: %v", err)
	}
}
