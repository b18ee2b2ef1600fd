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

// startSnapshot hands an outgoing MsgSnap to its own goroutine: opening the database copy and streaming it
// can take long, and Send must not wait. One snapshot per peer at a time; raft gets a failure for extras.
func (t *Transport) startSnapshot(p *peer, m *raftpb.Message) {
	if !p.snapBusy.CompareAndSwap(false, true) {
		t.log.Warn("snapshot already in flight; reporting failure", p.logAttrs())
		t.rep.snapshot(p.id, false)
		return
	}
	if !t.spawn(func() { t.sendSnapshot(p, m) }) {
		p.snapBusy.Store(false)
	}
}

// sendSnapshot streams one snapshot and reports the outcome to raft exactly once.
func (t *Transport) sendSnapshot(p *peer, m *raftpb.Message) {
	start := time.Now()
	n, err := t.streamSnapshot(p, m)
	// Free the slot before reporting, so a MsgSnap raft sends in reaction to the report is not refused.
	p.snapBusy.Store(false)
	t.rep.snapshot(p.id, err == nil)
	if err != nil {
		err = fmt.Errorf("snapshot to %x: %w", p.id, err)
		p.setErr(err)
		t.log.Warn("snapshot failed", p.logAttrs(), "err", err)
		return
	}
	t.snapshots.Sent.Add(1)
	t.snapshots.BytesSent.Add(n)
	t.log.Info("snapshot sent", p.logAttrs(), "index", m.GetSnapshot().GetMetadata().GetIndex(),
		"bytes", n, "took", time.Since(start).Round(time.Millisecond))
}

func (t *Transport) streamSnapshot(p *peer, m *raftpb.Message) (uint64, error) {
	meta, err := proto.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("marshal MsgSnap: %w", err)
	}
	if len(meta) > t.maxFrame {
		return 0, fmt.Errorf("MsgSnap is %d bytes, MaxFrame %d", len(meta), t.maxFrame)
	}
	// Open the data before dialling: producing a consistent copy may take a while, and the receiver
	// expects the MsgSnap frame soon after the handshake.
	data, err := t.h.OpenSnapshot(m)
	if err != nil {
		return 0, fmt.Errorf("open snapshot: %w", err)
	}
	if data == nil {
		return 0, fmt.Errorf("open snapshot: handler returned no data")
	}
	defer data.Close()

	nodeID, addr := p.target()
	h := t.hello()
	h.ToID, h.ToNodeID = p.id, nodeID
	s, err := t.openStream(p.ctx, addr, kindSnapshot, h, 64<<10)
	if err != nil {
		return 0, err
	}
	defer s.conn.Close()

	_ = s.conn.SetWriteDeadline(time.Now().Add(t.lim.streamIdle))
	if err := writeFrame(s.bw, meta); err != nil {
		return 0, fmt.Errorf("send MsgSnap: %w", err)
	}
	cw := &chunkWriter{bw: s.bw, conn: s.conn, idle: t.lim.streamIdle}
	if _, err := io.CopyBuffer(cw, data, make([]byte, sendChunk)); err != nil {
		if cw.err != nil {
			return cw.total, fmt.Errorf("send data: %w", err)
		}
		return cw.total, fmt.Errorf("read snapshot data: %w", err)
	}
	if err := cw.finish(true); err != nil {
		return cw.total, fmt.Errorf("send trailer: %w", err)
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(snapshotAckTimeout))
	if err := readStatus(s.br); err != nil {
		return cw.total, fmt.Errorf("receiver: %w", err)
	}
	return cw.total, nil
}

// serveSnapshot is the acceptor side of a snapshot stream (kind 2).
func (t *Transport) serveSnapshot(conn net.Conn, br *bufio.Reader, bw *bufio.Writer) error {
	h, err := t.acceptHello(conn, br, bw)
	if err != nil {
		return err
	}
	// Still under the handshake deadline: the sender writes the MsgSnap right after our status.
	f, err := readFrame(br, t.maxFrame, nil)
	if err != nil {
		return fmt.Errorf("snapshot from %x: read MsgSnap: %w", h.FromID, err)
	}
	m := new(raftpb.Message)
	if err := proto.Unmarshal(f, m); err != nil {
		return fmt.Errorf("snapshot from %x: decode MsgSnap: %w", h.FromID, err)
	}
	if m.GetType() != raftpb.MsgSnap || m.GetFrom() != h.FromID || m.GetTo() != t.cfg.ID {
		err := fmt.Errorf("snapshot stream carries %s from %x to %x", m.GetType(), m.GetFrom(), m.GetTo())
		t.answer(conn, bw, err)
		return fmt.Errorf("snapshot from %x: %w", h.FromID, err)
	}

	data := &chunkReader{br: br, conn: conn, idle: t.lim.streamIdle, withLength: true, what: "snapshot data"}
	err = t.h.ReceiveSnapshot(h, m, data)
	if err == nil && !data.done() {
		// The handler stopped before io.EOF, so the data it kept was never verified. Check the rest; a
		// success ack must mean the sender's bytes arrived intact.
		if _, derr := io.Copy(io.Discard, data); derr != nil {
			err = fmt.Errorf("handler returned before the end of the data, and the rest failed: %w", derr)
		}
	}
	if err != nil {
		// Best effort: if the stream was cut, nobody is listening; otherwise the sender learns why.
		t.answer(conn, bw, err)
		return fmt.Errorf("snapshot from %x: %w", h.FromID, err)
	}
	if err := t.answer(conn, bw, nil); err != nil {
		return fmt.Errorf("snapshot from %x: send ack: %w", h.FromID, err)
	}
	t.snapshots.Received.Add(1)
	t.snapshots.BytesReceived.Add(data.total)
	t.log.Info("snapshot received", "peer", cmp.Or(h.FromNodeID, hexID(h.FromID)), "peer_raft_id", hexID(h.FromID), "index", m.GetSnapshot().GetMetadata().GetIndex(),
		"bytes", data.total)
	return nil
}
