package fsm

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/raftlite/raftlite/errcode"
	"go.etcd.io/raft/v3/raftpb"
)

// install runs on the apply loop.
func (s *FSM) install(snap *raftpb.Snapshot, path string) error {
	meta := snap.GetMetadata()
	if err := s.db.Install(path, meta.GetIndex()); err != nil {
		return err
	}
	st := s.db.State()
	cs := raftpb.EnsureConfState(meta.GetConfState())
	if err := s.cfg.Restore(st.Membership, cs); err != nil {
		return err
	}
	s.applied.Set(meta.GetIndex(), meta.GetTerm(), cs)
	// Proposals this node made up to here were replaced by the snapshot: whether they are in it is unknown.
	s.node.FailWaiting(meta.GetIndex(), errcode.ErrOutcomeUnknown)
	s.node.RemoveStaleSnapshots(meta.GetIndex())
	s.restores.Add(1)
	s.log.Info("installed snapshot from leader", "index", meta.GetIndex(), "db_applied", st.AppliedIndex)
	return nil
}

// OpenSnapshot makes a consistent copy of the database to stream to a follower.
func (s *FSM) OpenSnapshot(m *raftpb.Message) (io.ReadCloser, error) {
	f, err := os.CreateTemp(s.cfg.SnapDir, fmt.Sprintf("send-%x-*.db", m.GetTo()))
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
