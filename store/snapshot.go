package store

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.etcd.io/raft/v3/raftpb"
)

// install runs on the apply loop.
func (s *Store) install(snap *raftpb.Snapshot, path string) error {
	meta := snap.GetMetadata()
	if err := s.db.Install(path, meta.GetIndex()); err != nil {
		return err
	}
	st := s.db.State()
	if err := s.cluster.Members().Load(st.Membership); err != nil {
		return err
	}
	cs := raftpb.EnsureConfState(meta.GetConfState())
	s.cluster.Members().SetConf(cs)
	s.syncPeers()
	s.applied.Set(meta.GetIndex(), meta.GetTerm(), cs)
	// Proposals this node made up to here were replaced by the snapshot: whether they are in it is unknown.
	s.node.FailWaiting(meta.GetIndex(), ErrOutcomeUnknown)
	s.node.RemoveStaleSnapshots(meta.GetIndex())
	s.log.Info("installed snapshot from leader", "index", meta.GetIndex(), "db_applied", st.AppliedIndex)
	return nil
}

// syncPeers points the transport at exactly the current members.
func (s *Store) syncPeers() {
	current := map[uint64]bool{}
	for _, m := range s.cluster.Members().List() {
		current[m.RaftID] = true
		if m.RaftID != s.cluster.RaftID() {
			s.tr.SetPeer(m.RaftID, m.NodeID, m.RaftAddr)
		}
	}
	for id := range s.tr.Stats() {
		if !current[id] {
			s.tr.RemovePeer(id)
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
