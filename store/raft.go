package store

import (
	"context"
	"log/slog"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/raftlite/raftlite/raftnode"
)

// The store's part of the raft loop (package raftnode runs it): what a committed conf change does to the
// membership and the transport, and how a proposal is recognised in the log.

// startRaft starts the raft node (bootstrapping it with peers, if given) and the apply loop.
func (s *Store) startRaft(peers []raft.Peer) error {
	if err := s.node.Start(peers); err != nil {
		return err
	}
	s.loops.Add(1)
	go s.runApply()
	return nil
}

// sender is the transport as the raft node sends through it.
type sender Store

func (t *sender) Send(msgs []*raftpb.Message) { t.tr.Send(msgs) }

// applyConfChange makes raft apply a committed conf change at once (raft's own configuration), updates the
// membership and the transport's peers, and returns what the apply loop must record with the entry.
func (s *Store) applyConfChange(rn *raft.RawNode, e *raftpb.Entry) raftnode.AppliedConf {
	cc, changes, added, err := decodeConfChange(e)
	if err != nil {
		// Every node decodes the same bytes: skipping it everywhere keeps replicas identical.
		s.log.Error("ignoring undecodable conf change", "index", e.GetIndex(), "err", err)
		return raftnode.AppliedConf{Index: e.GetIndex(), CS: s.members.confState(), Membership: s.members.encode()}
	}
	wasVoter := isVoter(s.members.confState(), s.raftID)
	cs := s.members.confState()
	if err := checkConfChange(rn, cc); err != nil {
		// Not handed to raft (confcheck.go): the configuration stays as it is, on every node alike.
		s.log.Warn("cancelling a membership change that would leave an invalid configuration", "index", e.GetIndex(), "err", err)
		changes, added = nil, nil
	} else {
		cs = rn.ApplyConfChange(cc)
	}
	s.members.apply(changes, added, cs)
	// Entries the database already held are handed out again after a restart: not news.
	replayed := e.GetIndex() <= s.openedAt
	for _, c := range changes {
		id := c.GetNodeId()
		if id == s.raftID {
			switch {
			case replayed:
			case c.GetType() == raftpb.ConfChangeRemoveNode:
				s.log.Warn("this node was removed from the cluster")
			case !wasVoter && isVoter(cs, s.raftID) && len(cs.GetVoters()) > 1:
				s.log.Info("joined the cluster as a voter", "voters", len(cs.GetVoters()))
			}
			continue
		}
		if c.GetType() == raftpb.ConfChangeRemoveNode {
			s.tr.RemovePeer(id)
		} else if m, ok := s.members.get(id); ok {
			s.tr.SetPeer(id, m.GetNodeId(), m.GetRaftAddr())
		}
	}
	level := slog.LevelInfo
	if replayed {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, "membership changed", "index", e.GetIndex(), "voters", s.members.nodeIDs(cs.GetVoters()), "learners", s.members.nodeIDs(cs.GetLearners()))
	return raftnode.AppliedConf{Index: e.GetIndex(), CS: cs, Membership: s.members.encode()}
}

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
