package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// acceptLoop accepts connections until the listener closes. sem bounds concurrent inbound connections:
// beyond the limit, new connections are closed at once rather than queued, so a flood cannot exhaust
// memory or file descriptors.
func (t *Transport) acceptLoop(sem chan struct{}) {
	var delay time.Duration
	for {
		c, err := t.cfg.Listener.Accept()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Probably out of file descriptors; back off like net/http instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Error("accept failed; retrying", "err", err, "in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-t.ctx.Done():
				return
			}
		}
		delay = 0
		select {
		case sem <- struct{}{}:
		default:
			c.Close()
			t.logRejected(c)
			continue
		}
		setKeepAlive(c)
		tc, err := t.track(c)
		if err != nil {
			<-sem
			return
		}
		if !t.spawn(func() {
			defer func() { <-sem }()
			t.serveConn(tc)
		}) {
			tc.Close()
			<-sem
			return
		}
	}
}

// logRejected logs connections refused for exceeding the limit, at most once a second.
func (t *Transport) logRejected(c net.Conn) {
	now := time.Now().UnixNano()
	last := t.rejectLog.Load()
	if now-last >= int64(time.Second) && t.rejectLog.CompareAndSwap(last, now) {
		t.log.Warn("too many inbound connections; closing new ones", "limit", t.lim.maxConns,
			"remote", c.RemoteAddr().String())
	}
}

// serveConn reads the kind byte and hands the connection to that kind's server; it closes conn when done.
// The kind byte, hello and first rpc request must arrive within the handshake timeout.
func (t *Transport) serveConn(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(t.lim.handshakeTimeout))
	var kind [1]byte
	if _, err := io.ReadFull(conn, kind[:]); err != nil {
		t.log.Debug("inbound connection closed before its kind byte", "remote", remote(conn), "err", err)
		return
	}
	var err error
	switch kind[0] {
	case kindRaft:
		err = t.serveRaft(conn, kindRaft, bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 512))
	case kindRaftControl:
		err = t.serveRaft(conn, kindRaftControl, bufio.NewReaderSize(conn, 4<<10), bufio.NewWriterSize(conn, 512))
	case kindSnapshot:
		err = t.serveSnapshot(conn, bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 4<<10))
	case kindRPC:
		err = t.serveRPC(conn, bufio.NewReaderSize(conn, 16<<10), bufio.NewWriterSize(conn, 16<<10))
	case kindStreamRPC:
		err = t.serveStreamRPC(conn, bufio.NewReaderSize(conn, 16<<10), bufio.NewWriterSize(conn, 64<<10))
	default:
		err = fmt.Errorf("unknown connection kind %d", kind[0])
	}
	if err != nil && !t.closed.Load() {
		t.log.Debug("inbound connection ended", "kind", kind[0], "remote", remote(conn), "err", err)
	}
}

func remote(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
