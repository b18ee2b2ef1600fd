package store

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// The store's part of the raft loop (package raftnode runs it): what a committed conf change does to the
// membership and the transport, and how a proposal is recognised in the log.

// startRaft starts the raft node (bootstrapping it with peers, if given) and the apply loop.
// It is refused once Close has begun, so that nothing starts that Close would not stop.
func (s *Store) startRaft(peers []raft.Peer) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.stopped.Load() {
		return ErrStopped
	}
	if err := s.node.Start(peers); err != nil {
		return err
	}
	s.fsm.Start()
	if s.cdc != nil {
		s.cdc.Start()
	}
	return nil
}

// sender is the transport as the raft node sends through it.
type sender Store

func (t *sender) Send(msgs []*raftpb.Message) { t.tr.Send(msgs) }

// commandID reads the proposer and request id of an encoded command.Command without decoding the rest.
func commandID(data []byte) (proposer, id uint64) {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return 0, 0
		}
		data = data[n:]
		if typ == protowire.VarintType && (num == 2 || num == 3) {
			v, m := protowire.ConsumeVarint(data)
			if m < 0 {
				return 0, 0
			}
			if num == 2 {
				proposer = v
			} else {
				id = v
			}
			data = data[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return 0, 0
		}
		data = data[m:]
	}
	return proposer, id
}
