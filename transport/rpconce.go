package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// CallOnce is Call for requests that must not run twice (a forwarded write): the request is written at
// most once. A pooled connection is checked for a peer that hung up before it is used (a restarted server
// closes its end), since after writing there is no telling whether the old server ran the request.
func (t *Transport) CallOnce(ctx context.Context, addr string, method uint8, req []byte) ([]byte, error) {
	if 1+len(req) > t.maxFrame {
		return nil, fmt.Errorf("rpc %d to %s: request of %d bytes exceeds MaxFrame %d", method, addr, len(req), t.maxFrame)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rpc %d to %s: %w", method, addr, err)
	}
	c := t.pool.get(addr)
	for c != nil && !alive(c) {
		c.conn.Close()
		c = t.pool.get(addr)
	}
	if c == nil {
		var err error
		if c, err = t.dialRPC(ctx, addr, kindRPC); err != nil {
			return nil, fmt.Errorf("rpc %d to %s: %w", method, addr, err)
		}
	}
	resp, reusable, err := t.roundTrip(ctx, c, method, req)
	if reusable {
		t.pool.put(addr, c)
	} else {
		c.conn.Close()
	}
	var re *RemoteError
	if err == nil || errors.As(err, &re) {
		return resp, err
	}
	return nil, fmt.Errorf("rpc %d to %s: %w", method, addr, err)
}

// alive reports whether an idle connection's peer is still there: nothing may arrive on an idle rpc
// connection, so EOF, a reset or stray bytes mean it is not. The check must not wait: every forwarded
// request makes it.
func alive(c *rpcConn) bool {
	if c.br.Buffered() > 0 {
		return false
	}
	// Look at the socket beneath the wrappers (our tracking, TLS: any record arriving now means closing).
	if ok, known := peekAlive(socketOf(c.conn)); known {
		return ok
	}
	// No way to peek without waiting: wait briefly for a read that would block.
	_ = c.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := c.br.Peek(1)
	_ = c.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// socketOf returns the connection beneath conn's wrappers (ours, TLS): the one a system call can read.
func socketOf(conn net.Conn) net.Conn {
	for {
		u, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			return conn
		}
		conn = u.NetConn()
	}
}
