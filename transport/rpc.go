package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// rpcConn is a client connection of kind rpc, kept in the pool between calls.
type rpcConn struct {
	conn      net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

// rpcPool keeps a few idle rpc connections per address: calls are frequent (forwarded writes), and a fresh
// TCP (later TLS) handshake per call would dominate their latency.
type rpcPool struct {
	mu     sync.Mutex
	idle   map[string][]*rpcConn
	closed bool
}

// get returns the most recently used idle connection for addr, or nil.
func (p *rpcPool) get(addr string) *rpcConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		cs := p.idle[addr]
		if len(cs) == 0 {
			return nil
		}
		c := cs[len(cs)-1]
		cs[len(cs)-1] = nil
		if cs = cs[:len(cs)-1]; len(cs) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = cs
		}
		if time.Since(c.idleSince) < pooledMaxAge {
			return c
		}
		c.conn.Close() // the server is about to drop it for idleness
	}
}

func (p *rpcPool) put(addr string, c *rpcConn) {
	p.mu.Lock()
	if p.closed || len(p.idle[addr]) >= maxIdlePerAddr {
		p.mu.Unlock()
		c.conn.Close()
		return
	}
	c.idleSince = time.Now()
	p.idle[addr] = append(p.idle[addr], c)
	p.mu.Unlock()
}

func (p *rpcPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, cs := range idle {
		for _, c := range cs {
			c.conn.Close()
		}
	}
}

// dialRPC opens a connection of the given kind. The kind byte is only buffered: it leaves with the first
// request, saving a packet.
func (t *Transport) dialRPC(ctx context.Context, addr string, kind byte) (*rpcConn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	conn, err := t.dial(dctx, addr)
	cancel()
	if err != nil {
		return nil, err
	}
	c := &rpcConn{conn: conn, br: bufio.NewReaderSize(conn, 16<<10), bw: bufio.NewWriterSize(conn, 16<<10)}
	_ = c.bw.WriteByte(kind)
	// The hello says who is calling (no answer is awaited: the first response doubles as one).
	hb, err := t.hello().marshal()
	if err == nil {
		err = writeFrame(c.bw, hb)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rpc hello: %w", err)
	}
	return c, nil
}

// Call sends one request to the node at addr and waits for its response, within ctx. A handler error comes
// back as *RemoteError. A pooled connection found dead on first use (the server restarted) is replaced
// once, transparently; the request is then sent again, so it may have reached the old server too.
func (t *Transport) Call(ctx context.Context, addr string, method uint8, req []byte) ([]byte, error) {
	if 1+len(req) > t.maxFrame {
		return nil, fmt.Errorf("rpc %d to %s: request of %d bytes exceeds MaxFrame %d", method, addr, len(req), t.maxFrame)
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("rpc %d to %s: %w", method, addr, err)
		}
		c := t.pool.get(addr)
		pooled := c != nil
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
		if pooled && attempt == 0 && isStaleConn(err) {
			t.log.Debug("pooled rpc connection was dead; retrying on a fresh one", "addr", addr, "err", err)
			continue
		}
		return nil, fmt.Errorf("rpc %d to %s: %w", method, addr, err)
	}
}

// roundTrip writes one request and reads its response. reusable says whether the connection is still in
// a clean state (a complete exchange, no deadline fired) and may go back to the pool.
func (t *Transport) roundTrip(ctx context.Context, c *rpcConn, method uint8, req []byte) (resp []byte, reusable bool, err error) {
	dl, hasDL := ctx.Deadline()
	_ = c.conn.SetDeadline(dl) // zero (no deadline) when ctx has none
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(aLongTimeAgo) })

	err = writeTaggedFrame(c.bw, method, req)
	if err == nil {
		err = c.bw.Flush()
	}
	var f []byte
	if err == nil {
		f, err = readFrame(c.br, t.maxFrame, nil)
	}
	fired := !stop()
	if err != nil {
		if fired || ctx.Err() != nil || (hasDL && errors.Is(err, os.ErrDeadlineExceeded)) {
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded // the conn deadline beat ctx's own timer by a hair
			}
			return nil, false, fmt.Errorf("%w (%v)", cause, err)
		}
		return nil, false, err
	}
	reusable = !fired
	if reusable && hasDL {
		_ = c.conn.SetDeadline(time.Time{})
	}
	if len(f) == 0 {
		return nil, false, errors.New("empty rpc response frame")
	}
	if f[0] == statusOK {
		return f[1:], reusable, nil
	}
	if re, ok := remoteError(f[0], f[1:]); ok {
		return nil, reusable, re
	}
	return nil, false, fmt.Errorf("rpc response has unknown status byte %d", f[0])
}

// isStaleConn reports whether err looks like a connection the server closed while it sat in the pool:
// EOF before any byte of the response, or a reset / broken pipe.
func isStaleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// CallStream sends one request and returns the response as a stream (e.g. a backup). ctx governs the whole
// stream, not just the call: cancelling it aborts reading. The reader returns an error if the stream is cut
// or its checksum fails, and io.EOF only after the data verified. Close it when done; the connection is
// never reused.
func (t *Transport) CallStream(ctx context.Context, addr string, method uint8, req []byte) (io.ReadCloser, error) {
	if 1+len(req) > t.maxFrame {
		return nil, fmt.Errorf("stream rpc %d to %s: request of %d bytes exceeds MaxFrame %d", method, addr, len(req), t.maxFrame)
	}
	c, err := t.dialRPC(ctx, addr, kindStreamRPC)
	if err != nil {
		return nil, fmt.Errorf("stream rpc %d to %s: %w", method, addr, err)
	}
	dl, _ := ctx.Deadline()
	_ = c.conn.SetDeadline(dl)
	body := &streamBody{
		cr:   chunkReader{br: c.br, what: "stream rpc response"},
		conn: c.conn,
		ctx:  ctx,
		stop: context.AfterFunc(ctx, func() { c.conn.Close() }),
	}
	err = writeTaggedFrame(c.bw, method, req)
	if err == nil {
		err = c.bw.Flush()
	}
	if err == nil {
		err = readStatus(c.br)
	}
	if err != nil {
		body.Close()
		var re *RemoteError
		if errors.As(err, &re) {
			return nil, re
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("stream rpc %d to %s: %w", method, addr, err)
	}
	return body, nil
}

// streamBody is CallStream's reader.
type streamBody struct {
	cr   chunkReader
	conn net.Conn
	ctx  context.Context
	stop func() bool
	once sync.Once
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.cr.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", b.ctx.Err(), err)
	}
	return n, err
}

func (b *streamBody) Close() error {
	b.once.Do(func() {
		b.stop()
		b.conn.Close()
	})
	return nil
}
