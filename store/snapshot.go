package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/raftlog"
)

// storage is the raft.Storage raft reads: the durable log, except that Snapshot describes the database as
// it is now (applied index, term and ConfState), built when raft needs to send one. A snapshot recorded at
// compaction time would miss members added since, which then could never catch up (a learner must find
// itself in the snapshot's ConfState). The database copy itself is streamed by the transport.
type storage struct {
	*raftlog.Log
	s *Store
}

func (st *storage) Snapshot() (*raftpb.Snapshot, error) {
	idx, term, cs := st.s.applied.snapshot()
	if idx == 0 {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(idx), Term: new(term), ConfState: cs}}, nil
}

// installRequest asks the apply loop to swap in a database received from the leader.
type installRequest struct {
	snap *raftpb.Snapshot
	path string
	done chan error
}

// installSnapshot runs on the raft loop for a Ready carrying a snapshot: the received database is put in
// place (after every earlier entry is applied), then the log records the snapshot. In that order, a crash
// in between leaves a database ahead of the log, which restart handles, never one behind it.
func (s *Store) installSnapshot(snap *raftpb.Snapshot) error {
	idx := snap.GetMetadata().GetIndex()
	s.snapMu.Lock()
	path, ok := s.pendingSnaps[idx]
	delete(s.pendingSnaps, idx)
	s.snapMu.Unlock()
	if !ok {
		return fmt.Errorf("raft installs snapshot %d but no database was received for it", idx)
	}
	req := &installRequest{snap: snap, path: path, done: make(chan error, 1)}
	select {
	case s.applyc <- applyTask{install: req}:
	case <-s.stopc:
		return ErrStopped
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("install snapshot %d: %w", idx, err)
		}
	case <-s.stopc:
		return ErrStopped
	}
	if err := s.rlog.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("record installed snapshot %d: %w", idx, err)
	}
	s.lastIndex.Store(idx)
	return nil
}

// install runs on the apply loop.
func (s *Store) install(snap *raftpb.Snapshot, path string) error {
	meta := snap.GetMetadata()
	if err := s.db.Install(path, meta.GetIndex()); err != nil {
		return err
	}
	st := s.db.State()
	if err := s.members.load(st.Membership); err != nil {
		return err
	}
	cs := raftpb.EnsureConfState(meta.GetConfState())
	s.members.setConf(cs)
	s.syncPeers()
	s.applied.set(meta.GetIndex(), meta.GetTerm(), cs)
	// Proposals this node made up to here were replaced by the snapshot: whether they are in it is unknown.
	s.waiters.failUpTo(meta.GetIndex(), ErrOutcomeUnknown)
	s.removeStaleSnapshots(meta.GetIndex())
	s.log.Info("installed snapshot from leader", "index", meta.GetIndex(), "db_applied", st.AppliedIndex)
	return nil
}

// syncPeers points the transport at exactly the current members.
func (s *Store) syncPeers() {
	current := map[uint64]bool{}
	for _, m := range s.members.list() {
		current[m.RaftID] = true
		if m.RaftID != s.raftID {
			s.tr.SetPeer(m.RaftID, m.NodeID, m.RaftAddr)
		}
	}
	for id := range s.tr.Stats() {
		if !current[id] {
			s.tr.RemovePeer(id)
		}
	}
}

func (s *Store) removeStaleSnapshots(upTo uint64) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	for idx, path := range s.pendingSnaps {
		if idx <= upTo {
			os.Remove(path)
			delete(s.pendingSnaps, idx)
		}
	}
}

// openSnapshot makes a consistent copy of the database to stream to a follower.
func (s *Store) openSnapshot(m *raftpb.Message) (io.ReadCloser, error) {
	f, err := os.CreateTemp(s.snapDir(), fmt.Sprintf("send-%x-*.db", m.GetTo()))
	if err != nil {
		return nil, fmt.Errorf("snapshot for %x: %w", m.GetTo(), err)
	}
	path := f.Name()
	f.Close()
	st, err := s.db.Copy(context.Background(), path)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	if st.AppliedIndex < m.GetSnapshot().GetMetadata().GetIndex() {
		os.Remove(path)
		return nil, fmt.Errorf("database copy at %d is behind snapshot %d", st.AppliedIndex, m.GetSnapshot().GetMetadata().GetIndex())
	}
	f, err = os.Open(path)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	s.log.Info("sending snapshot", "to", fmt.Sprintf("%x", m.GetTo()), "index", m.GetSnapshot().GetMetadata().GetIndex(), "db_applied", st.AppliedIndex)
	return &removeOnClose{File: f}, nil
}

type removeOnClose struct{ *os.File }

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	os.Remove(r.File.Name())
	return err
}

// receiveSnapshot stores a database streamed by the leader, then hands raft the snapshot message.
func (s *Store) receiveSnapshot(m *raftpb.Message, data io.Reader) error {
	idx := m.GetSnapshot().GetMetadata().GetIndex()
	final := filepath.Join(s.snapDir(), fmt.Sprintf("recv-%d.db", idx))
	f, err := os.CreateTemp(s.snapDir(), "recv-*.tmp")
	if err != nil {
		return fmt.Errorf("receive snapshot %d: %w", idx, err)
	}
	tmp := f.Name()
	n, err := io.Copy(f, data)
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
	s.snapMu.Lock()
	if old, ok := s.pendingSnaps[idx]; ok && old != final {
		os.Remove(old)
	}
	s.pendingSnaps[idx] = final
	s.snapMu.Unlock()
	s.log.Info("received snapshot", "index", idx, "bytes", n)
	select {
	case s.recvc <- []*raftpb.Message{m}:
		return nil
	case <-s.stopc:
		return ErrStopped
	}
}
