package transport

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// serveRaft is the acceptor side of a raft stream (kind 1 or 5): handshake, then frames until the peer
// hangs up.
func (t *Transport) serveRaft(conn net.Conn, kind byte, br *bufio.Reader, bw *bufio.Writer) error {
	h, err := t.acceptHello(conn, br, bw)
	if err != nil {
		return err
	}
	// Raft streams may be idle between heartbeats for as long as the cluster is quiet; TCP keepalive, not a
	// read deadline, detects a vanished peer.
	_ = conn.SetReadDeadline(time.Time{})
	from := inboundKey{h.FromID, kind}
	t.setInbound(from, conn)
	defer t.clearInbound(from, conn)
	return t.readRaftStream(br, h)
}

// inboundKey names one of a peer's raft streams: its Raft ID and the stream's kind.
type inboundKey struct {
	from uint64
	kind byte
}

// setInbound records conn as the peer's current stream of its kind and closes the previous one: a peer
// only dials anew when it has given up on its old connection, which may linger half-open here until
// keepalive notices.
func (t *Transport) setInbound(from inboundKey, conn net.Conn) {
	t.connMu.Lock()
	old := t.inbound[from]
	t.inbound[from] = conn
	t.connMu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (t *Transport) clearInbound(from inboundKey, conn net.Conn) {
	t.connMu.Lock()
	if t.inbound[from] == conn {
		delete(t.inbound, from)
	}
	t.connMu.Unlock()
}

// readRaftStream decodes raft messages and hands them to the handler in batches: it keeps reading while
// another complete frame is already buffered, then delivers, so a burst costs one handler call.
func (t *Transport) readRaftStream(br *bufio.Reader, h Hello) error {
	var (
		buf    []byte
		batch  []*raftpb.Message
		warned bool
	)
	flush := func() {
		if len(batch) > 0 {
			t.h.HandleMessages(batch)
			batch = nil // the handler owns the slice now
		}
	}
	for {
		f, err := readFrame(br, t.maxFrame, buf)
		if err != nil {
			flush()
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("raft stream from %x: %w", h.FromID, err)
		}
		if cap(f) <= 1<<20 {
			buf = f[:0] // proto.Unmarshal copies bytes fields, so the buffer can be reused
		}
		m := new(raftpb.Message)
		if err := proto.Unmarshal(f, m); err != nil {
			flush()
			return fmt.Errorf("raft stream from %x: decode message: %w", h.FromID, err)
		}
		// A stream vetted for one peer carries only that peer's messages to us, and snapshots travel on
		// their own connection with their data; anything else is a confused or hostile peer.
		if m.GetFrom() == h.FromID && m.GetTo() == t.cfg.ID && m.GetType() != raftpb.MsgSnap {
			batch = append(batch, m)
		} else if !warned {
			t.log.Warn("dropping unexpected raft message", "peer", cmp.Or(h.FromNodeID, hexID(h.FromID)), "peer_raft_id", hexID(h.FromID),
				"type", m.GetType().String(), "from", hexID(m.GetFrom()), "to", hexID(m.GetTo()))
			warned = true
		}
		if len(batch) >= maxBatch || !frameBuffered(br) {
			flush()
		}
	}
}
