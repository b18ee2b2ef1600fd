package store

import (
	"context"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/transport"
)

// handler is the Store seen by the transport.
type handler Store

var _ transport.Handler = (*handler)(nil)

// AcceptStream takes raft traffic addressed to this data directory's Raft ID only. Traffic addressed to
// another Raft ID under this node-id means the cluster still knows the identity this node had before its
// data was wiped: that is the signal for a fresh first node to rejoin rather than bootstrap.
func (h *handler) AcceptStream(hello transport.Hello) error {
	s := (*Store)(h)
	if err := s.checkCluster(hello.FromClusterID, hello.FromNodeID); err != nil {
		if hello.ToNodeID == s.cfg.NodeID {
			s.warnForeignCluster(hello.FromClusterID, hello.FromAddr)
		}
		return err
	}
	if hello.ToID == s.raftID {
		// A node that has just joined learns its peers from the log it has not received yet; until then it
		// answers whoever calls, at the address the caller gives.
		// A member restarted at another address is reachable there at once, before the membership says so
		// (refresh.go).
		if m, known := s.members.get(hello.FromID); hello.FromID != 0 && hello.FromAddr != "" && (!known || m.GetRaftAddr() != hello.FromAddr) {
			s.tr.SetPeer(hello.FromID, hello.FromNodeID, hello.FromAddr)
		}
		return nil
	}
	if hello.ToNodeID == s.cfg.NodeID && hello.FromAddr != "" {
		select {
		case s.contact <- hello.FromAddr:
		default:
		}
		return fmt.Errorf("node %s restarted without its data and is now Raft node %x; it rejoins through %s",
			s.cfg.NodeID, s.raftID, hello.FromAddr)
	}
	return fmt.Errorf("this is Raft node %x (node %s), not %x (node %s)", s.raftID, s.cfg.NodeID, hello.ToID, hello.ToNodeID)
}

func (h *handler) HandleMessages(msgs []*raftpb.Message) { h.node.Step(msgs) }

func (h *handler) ReportUnreachable(id uint64) { h.node.ReportUnreachable(id) }

func (h *handler) ReportSnapshot(id uint64, ok bool) { h.node.ReportSnapshot(id, ok) }

func (h *handler) OpenSnapshot(m *raftpb.Message) (io.ReadCloser, error) {
	return (*Store)(h).openSnapshot(m)
}

func (h *handler) ReceiveSnapshot(hello transport.Hello, m *raftpb.Message, data io.Reader) error {
	s := (*Store)(h)
	if m.GetTo() != s.raftID || m.GetType() != raftpb.MsgSnap {
		return fmt.Errorf("snapshot message for %x, this is %x", m.GetTo(), s.raftID)
	}
	if err := s.node.ReceiveSnapshot(m, data); err != nil {
		return fmt.Errorf("node %s: %w", s.cfg.NodeID, err)
	}
	return nil
}

func (h *handler) HandleRPC(ctx context.Context, method uint8, req []byte) ([]byte, error) {
	return (*Store)(h).handleRPC(ctx, method, req)
}

func (h *handler) HandleStreamRPC(ctx context.Context, method uint8, req []byte, w io.Writer) error {
	return (*Store)(h).handleStreamRPC(ctx, method, req, w)
}
