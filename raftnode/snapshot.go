package raftnode

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/raftlog"
)

// storage is the raft.Storage raft reads: the durable log, except that Snapshot describes the state
// machine as it is now (applied index, term and ConfState), built when raft needs to send one. A snapshot
// recorded at compaction time would miss members added since, which then could never catch up (a learner
// must find itself in the snapshot's ConfState). The state itself is streamed by the transport.
type storage struct {
	*raftlog.Log
	applied *AppliedIndex
}

func (st *storage) Snapshot() (*raftpb.Snapshot, error) {
	idx, term, cs := st.applied.Position()
	if idx == 0 {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(idx), Term: new(term), ConfState: cs}}, nil
}

// Install asks the state machine to replace its state with a snapshot received from the leader (the file
// at Path), after every earlier entry; it answers on Done.
type Install struct {
	Snap *raftpb.Snapshot
	Path string
	Done chan error
}

// installSnapshot runs on the raft loop for a Ready carrying a snapshot: the state machine puts the
// received state in place (after every earlier entry is applied), then the log records the snapshot. In
// that order, a crash in between leaves the state ahead of the log, which restart handles, never behind it.
func (l *loop) installSnapshot(snap *raftpb.Snapshot) error {
	idx := snap.GetMetadata().GetIndex()
	path, ok := l.n.snaps.take(idx)
	if !ok {
		return fmt.Errorf("raft installs snapshot %d but no database was received for it", idx)
	}
	req := &Install{Snap: snap, Path: path, Done: make(chan error, 1)}
	select {
	case l.n.applyc <- Apply{Install: req}:
	case <-l.n.stopc:
		return ErrStopped
	}
	select {
	case err := <-req.Done:
		if err != nil {
			return fmt.Errorf("install snapshot %d: %w", idx, err)
		}
	case <-l.n.stopc:
		return ErrStopped
	}
	if err := l.n.cfg.Log.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("record installed snapshot %d: %w", idx, err)
	}
	l.n.state.lastIndex.Store(idx)
	return nil
}

// receivedSnapshots maps the index of a snapshot received from the leader to its file until raft
// installs it.
type receivedSnapshots struct {
	mu      sync.Mutex
	byIndex map[uint64]string
}

func (r *receivedSnapshots) take(idx uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path, ok := r.byIndex[idx]
	delete(r.byIndex, idx)
	return path, ok
}

// ReceiveSnapshot stores the state the leader streams with a snapshot message, then hands raft the message.
func (n *Node) ReceiveSnapshot(m *raftpb.Message, data io.Reader) error {
	if !n.running.Load() {
		return fmt.Errorf("not running raft yet")
	}
	idx := m.GetSnapshot().GetMetadata().GetIndex()
	final := filepath.Join(n.cfg.SnapDir, fmt.Sprintf("recv-%d.db", idx))
	f, err := os.CreateTemp(n.cfg.SnapDir, "recv-*.tmp")
	if err != nil {
		return fmt.Errorf("receive snapshot %d: %w", idx, err)
	}
	tmp := f.Name()
	k, err := io.Copy(f, data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("receive snapshot %d: %w", idx, err)
	}
	n.snaps.mu.Lock()
	if old, ok := n.snaps.byIndex[idx]; ok && old != final {
		os.Remove(old)
	}
	n.snaps.byIndex[idx] = final
	n.snaps.mu.Unlock()
	n.log.Info("received snapshot", "index", idx, "bytes", k)
	select {
	case n.in.recvc <- []*raftpb.Message{m}:
		return nil
	case <-n.stopc:
		return ErrStopped
	}
}

// RemoveStaleSnapshots deletes received snapshots up to index that raft never installed.
func (n *Node) RemoveStaleSnapshots(upTo uint64) {
	n.snaps.mu.Lock()
	defer n.snaps.mu.Unlock()
	for idx, path := range n.snaps.byIndex {
		if idx <= upTo {
			os.Remove(path)
			delete(n.snaps.byIndex, idx)
		}
	}
}
