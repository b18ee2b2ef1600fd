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

// AcceptStream takes raft traffic meant for this node (package cluster decides).
func (h *handler) AcceptStream(hello transport.Hello) error { return h.cluster.AcceptStream(hello) }

func (h *handler) HandleMessages(msgs []*raftpb.Message) { h.node.Step(msgs) }

func (h *handler) ReportUnreachable(id uint64) { h.node.ReportUnreachable(id) }

func (h *handler) ReportSnapshot(id uint64, ok bool) { h.node.ReportSnapshot(id, ok) }

func (h *handler) OpenSnapshot(m *raftpb.Message) (io.ReadCloser, error) {
	return h.fsm.OpenSnapshot(m)
}

func (h *handler) ReceiveSnapshot(hello transport.Hello, m *raftpb.Message, data io.Reader) error {
	s := (*Store)(h)
	if m.GetTo() != s.cluster.RaftID() || m.GetType() != raftpb.MsgSnap {
		return fmt.Errorf("snapshot message for %x, this is %x", m.GetTo(), s.cluster.RaftID())
	}
	if err := s.node.ReceiveSnapshot(m, data); err != nil {
		return fmt.Errorf("node %s: %w", s.cfg.NodeID, err)
	}
	return nil
}

func (h *handler) HandleRPC(ctx context.Context, method uint8, req []byte) ([]byte, error) {
	return h.handleRPC(ctx, method, req)
}

func (h *handler) HandleStreamRPC(ctx context.Context, method uint8, req []byte, w io.Writer) error {
	return h.handleStreamRPC(ctx, method, req, w)
}
