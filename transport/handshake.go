package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// stream is an established raft or snapshot connection after a successful handshake.
type stream struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

// errNoStatus: the acceptor closed the connection after our hello without answering it. A node closes a
// connection of a kind it does not know that way (so does one at its connection limit, or one dying).
var errNoStatus = errors.New("connection closed before the handshake's answer")

func isCutOff(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// openStream dials addr and performs the dialer's half of the handshake: kind byte and hello, then the
// acceptor's status. A rejection comes back as *RemoteError. The connection is closed when ctx ends.
func (t *Transport) openStream(ctx context.Context, addr string, kind byte, h Hello, bufSize int) (*stream, error) {
	hb, err := h.marshal()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	conn, err := t.dial(dctx, addr)
	cancel()
	if err != nil {
		return nil, err
	}
	// Removing the peer or closing the transport cancels ctx; that must cut this connection wherever it is.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	s := &stream{
		conn: &ctxConn{Conn: conn, stop: stop},
		br:   bufio.NewReaderSize(conn, 4<<10),
		bw:   bufio.NewWriterSize(conn, bufSize),
	}
	_ = conn.SetDeadline(time.Now().Add(t.lim.handshakeTimeout))
	err = s.bw.WriteByte(kind)
	if err == nil {
		err = writeFrame(s.bw, hb)
	}
	if err == nil {
		err = s.bw.Flush()
	}
	if err == nil {
		if err = readStatus(s.br); isCutOff(err) {
			err = fmt.Errorf("%w: %v", errNoStatus, err)
		}
	}
	if err != nil {
		s.conn.Close()
		var re *RemoteError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%s rejected the stream: %w", addr, err)
		}
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

// ctxConn stops its context.AfterFunc when closed, so finished streams do not pin their context.
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// acceptHello performs the acceptor's half of the handshake: read the hello, let the handler vet it, answer.
func (t *Transport) acceptHello(conn net.Conn, br *bufio.Reader, bw *bufio.Writer) (Hello, error) {
	f, err := readFrame(br, maxHelloFrame, nil)
	if err != nil {
		return Hello{}, fmt.Errorf("read hello: %w", err)
	}
	h, err := parseHello(f)
	if err == nil {
		if rerr := t.h.AcceptStream(h); rerr != nil {
			err = fmt.Errorf("stream from %x (%q at %s) rejected: %w", h.FromID, h.FromNodeID, h.FromAddr, rerr)
			t.answer(conn, bw, rerr)
			return Hello{}, err
		}
	}
	if werr := t.answer(conn, bw, err); err == nil && werr != nil {
		err = fmt.Errorf("send status: %w", werr)
	}
	return h, err
}

// answer writes and flushes a status frame, bounded by a write deadline so a peer that does not read
// cannot hold the goroutine.
func (t *Transport) answer(conn net.Conn, bw *bufio.Writer, status error) error {
	_ = conn.SetWriteDeadline(time.Now().Add(t.lim.handshakeTimeout))
	if err := writeStatus(bw, status); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return conn.SetWriteDeadline(time.Time{})
}
