package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/raftlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A test cluster of raft nodes wired directly to each other, each with a state machine that applies an
// entry by counting it and answers its proposer with the entry's index.

type testNet struct {
	mu    sync.Mutex
	nodes map[uint64]*Node
	down  map[uint64]bool
}

func (tn *testNet) sender(from uint64) Sender {
	return sendFunc(func(msgs []*raftpb.Message) { tn.send(from, msgs) })
}

type sendFunc func([]*raftpb.Message)

func (f sendFunc) Send(msgs []*raftpb.Message) { f(msgs) }

func (tn *testNet) send(from uint64, msgs []*raftpb.Message) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.down[from] {
		return
	}
	for _, m := range msgs {
		if to := tn.nodes[m.GetTo()]; to != nil && !tn.down[m.GetTo()] {
			go to.Step([]*raftpb.Message{m})
		}
	}
}

// identify reads the proposer and request id a test command carries in its first 16 bytes.
func identify(data []byte) (uint64, uint64) {
	if len(data) < 16 {
		return 0, 0
	}
	return binary.BigEndian.Uint64(data), binary.BigEndian.Uint64(data[8:])
}

func command(proposer, id uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, proposer), id)
}

type testNode struct {
	n       *Node
	applied sync.Map // index -> true
	stop    chan struct{}
	done    chan struct{}
}

func startCluster(t *testing.T, ids ...uint64) (*testNet, map[uint64]*testNode) {
	t.Helper()
	tn := &testNet{nodes: map[uint64]*Node{}, down: map[uint64]bool{}}
	nodes := map[uint64]*testNode{}
	var peers []raft.Peer
	for _, id := range ids {
		peers = append(peers, raft.Peer{ID: id})
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, id := range ids {
		rlog, err := raftlog.Open(filepath.Join(t.TempDir(), "raft"), raftlog.Options{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		applied := NewAppliedIndex(0, 0, nil)
		n := New(Config{ID: id, Tick: 10 * time.Millisecond, HeartbeatTicks: 1, ElectionTicks: 10, Log: rlog,
			Transport: tn.sender(id), SnapDir: t.TempDir(), Identify: identify,
			ConfChange: func(rn *raft.RawNode, e *raftpb.Entry) AppliedConf {
				var cc raftpb.ConfChange
				_ = proto.Unmarshal(e.GetData(), &cc)
				return AppliedConf{Index: e.GetIndex(), CS: rn.ApplyConfChange(&cc)}
			},
			Fail: func(err error) { t.Errorf("node %d failed: %v", id, err) }, Logger: logger}, applied)
		tn.nodes[id] = n
		node := &testNode{n: n, stop: make(chan struct{}), done: make(chan struct{})}
		nodes[id] = node
		if err := n.Start(peers); err != nil {
			t.Fatal(err)
		}
		go node.applyLoop()
		t.Cleanup(func() {
			n.Stop()
			close(node.stop)
			<-node.done
			rlog.Close()
		})
	}
	return tn, nodes
}

// applyLoop is the state machine: it records each entry and hands its index back as the result.
func (tn *testNode) applyLoop() {
	defer close(tn.done)
	for {
		select {
		case <-tn.stop:
			return
		case a := <-tn.n.Committed():
			for _, e := range a.Entries {
				tn.applied.Store(e.GetIndex(), true)
				tn.n.Deliver(e, e.GetIndex())
				tn.n.Applied().Set(e.GetIndex(), e.GetTerm(), nil)
			}
		}
	}
}

func waitLeader(t *testing.T, nodes map[uint64]*testNode, skip ...uint64) *testNode {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for id, n := range nodes {
			if n.n.IsLeader() && !contains(skip, id) {
				return n
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// A proposal on the leader is committed, applied on every node, and answered with the state machine's
// result; a follower refuses to propose; a ReadIndex round confirms an index covering the write.
func TestProposeReadIndexAndFollowers(t *testing.T) {
	_, nodes := startCluster(t, 1, 2, 3)
	l := waitLeader(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := l.n.Propose(ctx, command(l.n.ID(), 1), 1)
	if err != nil || r.Value != r.Index || r.Index == 0 {
		t.Fatalf("propose: %+v %v", r, err)
	}
	for id, n := range nodes {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, ok := n.applied.Load(r.Index); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d did not apply entry %d", id, r.Index)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n == l {
			continue
		}
		if _, err := n.n.Propose(ctx, command(n.n.ID(), 2), 2); !errors.Is(err, ErrNotLeader) {
			t.Errorf("a follower proposed: %v", err)
		}
		idx, err := n.n.ReadIndex(ctx)
		if err != nil || idx < r.Index {
			t.Errorf("ReadIndex on follower %d: %d %v, want at least %d", id, idx, err, r.Index)
		}
	}
}

// When the leader is cut off, the others elect a new one, which takes proposals; a proposal left
// waiting on a stopped node is answered ErrStopped.
func TestLeaderLossAndStop(t *testing.T) {
	tn, nodes := startCluster(t, 1, 2, 3)
	old := waitLeader(t, nodes)
	tn.mu.Lock()
	tn.down[old.n.ID()] = true
	tn.mu.Unlock()
	next := waitLeader(t, nodes, old.n.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := next.n.Propose(ctx, command(next.n.ID(), 1), 1); err != nil {
		t.Fatalf("propose on the new leader: %v", err)
	}
	// The old leader, cut off, cannot commit: its proposal waits, and Stop answers it.
	waiting := make(chan error, 1)
	go func() {
		_, err := old.n.Propose(context.Background(), command(old.n.ID(), 9), 9)
		waiting <- err
	}()
	time.Sleep(50 * time.Millisecond)
	old.n.Stop()
	select {
	case err := <-waiting:
		if err == nil {
			t.Error("a proposal of a cut-off leader succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a proposal waiting on a stopped node was not answered")
	}
}
