package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/internal/memnet"
	"github.com/raftlite/raftlite/transport"
)

// Tests of the core (raft node, state machine, cluster) with several whole nodes in one process over an
// in-memory network (internal/memnet) that can cut, drop and delay: fast, without sockets. Timeouts are
// short (200 ms heartbeats, 300 ms elections) and tests wait on conditions, never on fixed sleeps.

type memCluster struct {
	t     *testing.T
	net   *memnet.Network
	nodes []*memNode
}

type memNode struct {
	c    *memCluster
	name string
	cfg  Config
	s    *Store
}

func newMemCluster(t *testing.T, n int, mod func(*Config)) *memCluster {
	t.Helper()
	c := &memCluster{t: t, net: memnet.New()}
	first := c.add("n1", mod)
	waitFor(t, "n1 to lead", 10*time.Second, first.s.IsLeader)
	for i := 2; i <= n; i++ {
		c.add(fmt.Sprintf("n%d", i), mod, first.cfg.RaftAddr)
	}
	c.waitVoters(n)
	return c
}

// add starts a node that joins through the addresses given (none: it bootstraps).
func (c *memCluster) add(name string, mod func(*Config), join ...string) *memNode {
	c.t.Helper()
	n := &memNode{c: c, name: name}
	addr := "mem:" + name
	n.cfg = Config{
		DataDir: filepath.Join(c.t.TempDir(), name), NodeID: name, RaftAddr: addr, HTTPAddr: "127.0.0.1:1", Voter: true,
		Join: join, JoinAttempts: 200, JoinInterval: 50 * time.Millisecond, BootstrapGrace: 50 * time.Millisecond,
		HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, SnapshotInterval: 50 * time.Millisecond,
		Logger: testLogger(c.t, name), RaftLogger: raftTestLogger(name),
		NewTransport: func(id uint64, h transport.Handler) (Transport, error) {
			return c.net.Endpoint(addr, id, name, h), nil
		},
	}
	if mod != nil {
		mod(&n.cfg)
	}
	n.start()
	c.nodes = append(c.nodes, n)
	c.t.Cleanup(n.stop)
	return n
}

func (n *memNode) start() {
	n.c.t.Helper()
	s, err := Open(n.cfg)
	if err != nil {
		n.c.t.Fatalf("open %s: %v", n.name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		s.Close(ctx)
		n.c.t.Fatalf("start %s: %v", n.name, err)
	}
	n.s = s
}

func (n *memNode) stop() {
	if n.s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.s.Close(ctx)
		n.s = nil
	}
}

func (c *memCluster) running() []*memNode {
	var out []*memNode
	for _, n := range c.nodes {
		if n.s != nil {
			out = append(out, n)
		}
	}
	return out
}

// leader waits for a leader among the running nodes of group (all of them if none is given).
func (c *memCluster) leader(group ...*memNode) *memNode {
	c.t.Helper()
	if len(group) == 0 {
		group = c.running()
	}
	var l *memNode
	waitFor(c.t, "a leader", 15*time.Second, func() bool {
		for _, n := range group {
			if n.s != nil && n.s.IsLeader() {
				l = n
				return true
			}
		}
		return false
	})
	return l
}

func (c *memCluster) waitVoters(want int) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("%d voters on every node", want), 15*time.Second, func() bool {
		for _, n := range c.running() {
			voters := 0
			for _, m := range n.s.Members() {
				if m.Voter {
					voters++
				}
			}
			if voters != want {
				return false
			}
		}
		return true
	})
}

func (n *memNode) exec(sqls ...string) (Response, error) {
	stmts := make([]*command.Statement, len(sqls))
	for i, s := range sqls {
		stmts[i] = &command.Statement{Sql: s}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.s.Execute(ctx, &command.Request{Statements: stmts}, db.Env{NowUnixMs: time.Now().UnixMilli()})
}

func (n *memNode) mustExec(sqls ...string) Response {
	n.c.t.Helper()
	r, err := n.exec(sqls...)
	if err != nil {
		n.c.t.Fatalf("execute %v on %s: %v", sqls, n.name, err)
	}
	return r
}

// count reads table's row count on n at the given level.
func (n *memNode) count(table string, level Level) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := n.s.Query(ctx, &command.Request{Mode: command.Mode_MODE_QUERY,
		Statements: []*command.Statement{{Sql: "SELECT count(*) FROM " + table}}}, ReadOptions{Level: level}, db.Env{})
	if err != nil {
		return 0, err
	}
	if r := res.Results[0].Rows; r == nil || r.Error != "" || len(r.Values) != 1 {
		return 0, fmt.Errorf("count %s on %s: %+v", table, n.name, res.Results[0])
	}
	return res.Results[0].Rows.Values[0][0].(int64), nil
}

// waitRows waits until every running node holds want rows of table.
func (c *memCluster) waitRows(table string, want int64) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("%d rows of %s on every node", want, table), 15*time.Second, func() bool {
		for _, n := range c.running() {
			if got, err := n.count(table, LevelNone); err != nil || got != want {
				return false
			}
		}
		return true
	})
}

func (c *memCluster) others(n *memNode) []*memNode {
	var out []*memNode
	for _, o := range c.running() {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

func addrs(nodes ...*memNode) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.cfg.RaftAddr
	}
	return out
}

// A leader cut off from the others steps down; the majority elects another and takes writes; when the
// network heals, the old leader follows and catches up.
func TestMemFailover(t *testing.T) {
	c := newMemCluster(t, 3, nil)
	old := c.leader()
	old.mustExec("CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
	rest := c.others(old)
	c.net.Partition(addrs(old), addrs(rest...))
	waitFor(t, "the cut-off leader to step down", 10*time.Second, func() bool { return !old.s.IsLeader() })
	if _, err := old.exec("INSERT INTO t VALUES (99)"); err == nil {
		t.Fatal("a leader cut off from the majority acknowledged a write")
	}
	next := c.leader(rest...)
	next.mustExec("INSERT INTO t VALUES (2)")
	c.net.Heal()
	c.waitRows("t", 2)
	if n, _ := old.count("t", LevelNone); n != 2 {
		t.Errorf("the old leader holds %d rows", n)
	}
}

// A follower forwards writes and reads to the leader, which serves them as its own.
func TestMemForwarding(t *testing.T) {
	c := newMemCluster(t, 3, nil)
	l := c.leader()
	l.mustExec("CREATE TABLE t (x)")
	f := c.others(l)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.s.Forward(ctx, &command.ForwardRequest{Request: &command.Request{Statements: []*command.Statement{{Sql: "INSERT INTO t VALUES (7)"}}},
		NowUnixMs: time.Now().UnixMilli()})
	if err != nil || resp.RaftIndex == 0 || resp.Results[0].Exec == nil || resp.Results[0].Exec.RowsAffected != 1 {
		t.Fatalf("forwarded write: %+v %v", resp, err)
	}
	resp, err = f.s.Forward(ctx, &command.ForwardRequest{Read: true, Level: int32(LevelWeak),
		Request: &command.Request{Mode: command.Mode_MODE_QUERY, Statements: []*command.Statement{{Sql: "SELECT x FROM t"}}}})
	if err != nil || resp.Results[0].Rows == nil || resp.Results[0].Rows.Values[0][0] != int64(7) {
		t.Fatalf("forwarded read: %+v %v", resp, err)
	}
}

// A linearizable read on a follower sees every write acknowledged before it began; a follower cut off
// from the leader serves none rather than stale data.
func TestMemLinearizableReadsOnFollowers(t *testing.T) {
	c := newMemCluster(t, 3, nil)
	l := c.leader()
	l.mustExec("CREATE TABLE t (x)")
	for i := 1; i <= 20; i++ {
		l.mustExec("INSERT INTO t VALUES (1)")
		for _, f := range c.others(l) {
			if n, err := f.count("t", LevelLinearizable); err != nil || n != int64(i) {
				t.Fatalf("linearizable read on %s after write %d: %d %v", f.name, i, n, err)
			}
		}
	}
	f := c.others(l)[0]
	c.net.Partition(addrs(f), addrs(c.others(f)...))
	l.mustExec("INSERT INTO t VALUES (1)")
	if n, err := f.count("t", LevelLinearizable); err == nil {
		t.Fatalf("a follower cut off from the leader served a linearizable read (%d rows)", n)
	}
	c.net.Heal()
	c.waitRows("t", 21)
}

// A follower that falls behind while the leader compacts its log catches up from a snapshot.
func TestMemSnapshotToLaggingFollower(t *testing.T) {
	c := newMemCluster(t, 3, func(cfg *Config) { cfg.SnapshotThreshold, cfg.TrailingLogs = 20, 5 })
	l := c.leader()
	l.mustExec("CREATE TABLE t (x)")
	lag := c.others(l)[0]
	c.net.Partition(addrs(lag), addrs(c.others(lag)...))
	for i := 0; i < 100; i++ {
		l.mustExec("INSERT INTO t VALUES (1)")
	}
	waitFor(t, "the leader to compact its log", 10*time.Second, func() bool { return l.s.Status().FirstLogIndex > 20 })
	c.net.Heal()
	c.waitRows("t", 100)
	if got := lag.s.Status().SnapshotsReceived; got == 0 {
		t.Error("the lagging follower caught up without a snapshot")
	}
}

// A node joins as a learner and becomes a voter; a removed node leaves the configuration everywhere, and
// the rest go on.
func TestMemJoinPromoteRemove(t *testing.T) {
	c := newMemCluster(t, 3, nil)
	l := c.leader()
	l.mustExec("CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
	n4 := c.add("n4", nil, c.nodes[1].cfg.RaftAddr)
	c.waitVoters(4)
	c.waitRows("t", 1)
	victim := c.others(c.leader())[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n4.s.Remove(ctx, victim.name); err != nil { // through a node that may not lead
		t.Fatal(err)
	}
	victim.stop()
	c.waitVoters(3)
	c.leader().mustExec("INSERT INTO t VALUES (2)")
	c.waitRows("t", 2)
}

// Over a network that loses a fifth of the raft messages and delays (so reorders) the rest, every write
// acknowledged is applied on every node, and they agree.
func TestMemLossyNetwork(t *testing.T) {
	c := newMemCluster(t, 3, nil)
	c.leader().mustExec("CREATE TABLE t (id INTEGER PRIMARY KEY)")
	c.net.Faults(0.2, 5*time.Millisecond)
	acked := 0
	deadline := time.Now().Add(20 * time.Second)
	for id := 1; acked < 30 && time.Now().Before(deadline); id++ {
		for _, n := range c.running() {
			if !n.s.IsLeader() {
				continue
			}
			if _, err := n.exec(fmt.Sprintf("INSERT INTO t VALUES (%d)", id)); err == nil {
				acked++
			}
		}
	}
	if acked < 30 {
		t.Fatalf("only %d writes acknowledged over the lossy network in 20 s", acked)
	}
	c.net.Faults(0, 0)
	waitFor(t, "every node to hold every acknowledged write", 15*time.Second, func() bool {
		for _, n := range c.running() {
			if got, err := n.count("t", LevelNone); err != nil || got < int64(acked) {
				return false
			}
		}
		return true
	})
	want, _ := c.leader().count("t", LevelLinearizable)
	c.waitRows("t", want)
}

// A strong read on the leader sees every write acknowledged before it, reports the index it covers, and
// writes nothing to the log; a leader cut off from the others serves none, and a follower refers it to
// the leader.
func TestMemStrongReads(t *testing.T) {
	c := newMemCluster(t, 3, nil)
	l := c.leader()
	l.mustExec("CREATE TABLE t (x)")
	for i := 1; i <= 20; i++ {
		w := l.mustExec("INSERT INTO t VALUES (1)")
		last := l.s.Status().LastLogIndex
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		res, err := l.s.Query(ctx, &command.Request{Mode: command.Mode_MODE_QUERY,
			Statements: []*command.Statement{{Sql: "SELECT count(*) FROM t"}}}, ReadOptions{Level: LevelStrong}, db.Env{})
		cancel()
		if err != nil || res.Results[0].Rows.Values[0][0] != int64(i) {
			t.Fatalf("strong read after write %d: %+v %v", i, res, err)
		}
		if res.RaftIndex < w.RaftIndex {
			t.Fatalf("strong read's raft_index %d is below the write's %d", res.RaftIndex, w.RaftIndex)
		}
		if got := l.s.Status().LastLogIndex; got != last {
			t.Fatalf("a strong read wrote to the log: last index %d, was %d", got, last)
		}
	}
	if _, err := c.others(l)[0].count("t", LevelStrong); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("strong read on a follower: %v, want ErrNotLeader (the API forwards it)", err)
	}
	c.net.Partition(addrs(l), addrs(c.others(l)...))
	if n, err := l.count("t", LevelStrong); err == nil {
		t.Fatalf("a leader cut off from the others served a strong read (%d rows)", n)
	}
	c.net.Heal()
	l2 := c.leader()
	if n, err := l2.count("t", LevelStrong); err != nil || n != 20 {
		t.Fatalf("strong read after the partition healed: %d %v", n, err)
	}
}
