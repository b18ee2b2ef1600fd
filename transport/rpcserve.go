package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// serveRPC is the acceptor side of an rpc connection (kind 3): requests one after another until EOF.
func (t *Transport) serveRPC(conn net.Conn, br *bufio.Reader, bw *bufio.Writer) error {
	if _, err := readCallerHello(br); err != nil {
		return fmt.Errorf("rpc: %w", err)
	}
	for {
		// The first request arrives under the handshake deadline set on accept; later ones get the idle one.
		f, err := readFrame(br, t.maxFrame, nil)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("rpc: read request: %w", err)
		}
		if len(f) == 0 {
			return errors.New("rpc: empty request frame")
		}
		method := f[0]
		if br.Buffered() > 0 {
			return errors.New("rpc: caller sent more before its answer")
		}
		ctx, cancel := context.WithCancel(t.ctx)
		stopWatching, ok := t.watchHangUp(conn, cancel)
		if !ok {
			cancel()
			return ErrClosed
		}
		resp, herr := t.h.HandleRPC(ctx, method, f[1:])
		hungUp := stopWatching()
		cancel()
		if hungUp {
			return nil // nobody is left to read the answer
		}
		_ = conn.SetWriteDeadline(time.Now().Add(rpcIdleTimeout)) // a caller that stops reading is dropped
		switch {
		case herr != nil:
			tag, payload := errorFrame(herr)
			err = writeTaggedFrame(bw, tag, payload)
		case 1+len(resp) > t.maxFrame:
			err = writeTaggedFrame(bw, statusError, fmt.Appendf(nil,
				"rpc %d: response of %d bytes exceeds MaxFrame %d", method, len(resp), t.maxFrame))
		default:
			err = writeTaggedFrame(bw, statusOK, resp)
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			return fmt.Errorf("rpc: write response: %w", err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(rpcIdleTimeout))
	}
}

// serveStreamRPC is the acceptor side of a stream rpc (kind 4): one request, a status, then the data.
func (t *Transport) serveStreamRPC(conn net.Conn, br *bufio.Reader, bw *bufio.Writer) error {
	if _, err := readCallerHello(br); err != nil {
		return fmt.Errorf("stream rpc: %w", err)
	}
	f, err := readFrame(br, t.maxFrame, nil)
	if err != nil {
		return fmt.Errorf("stream rpc: read request: %w", err)
	}
	if len(f) == 0 {
		return errors.New("stream rpc: empty request frame")
	}
	// The caller sends nothing after its request, so a read that returns means it hung up (or the
	// transport is closing): cancel the handler rather than let it produce a stream nobody reads.
	_ = conn.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	if !t.spawn(func() {
		var b [1]byte
		_, _ = conn.Read(b[:])
		cancel()
	}) {
		return ErrClosed
	}
	w := &streamRPCWriter{cw: chunkWriter{bw: bw, conn: conn, idle: t.lim.streamIdle}}
	herr := t.h.HandleStreamRPC(ctx, f[0], f[1:], w)
	switch {
	case herr != nil && !w.started:
		return t.answer(conn, bw, herr)
	case herr != nil:
		// The protocol has no in-band error after data started; cutting the stream makes the caller's
		// reader fail instead of returning a short stream as if complete.
		return fmt.Errorf("stream rpc %d failed after %d bytes, cutting the stream: %w", f[0], w.cw.total, herr)
	case w.cw.err != nil:
		return fmt.Errorf("stream rpc %d: write: %w", f[0], w.cw.err)
	}
	if err := w.start(); err != nil {
		return fmt.Errorf("stream rpc %d: write: %w", f[0], err)
	}
	return w.cw.finish(false)
}

// streamRPCWriter sends the OK status lazily, on the first byte of data, so a handler that fails before
// writing anything can still report its error in the status frame. The first write is flushed at once so
// the caller learns the call succeeded; later ones are buffered (64 KiB) unless the handler calls Flush.
type streamRPCWriter struct {
	cw      chunkWriter
	started bool
}

func (w *streamRPCWriter) start() error {
	if w.started {
		return nil
	}
	w.started = true
	w.cw.deadline()
	if err := writeStatus(w.cw.bw, nil); err != nil {
		w.cw.err = err
		return err
	}
	return nil
}

func (w *streamRPCWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, w.cw.err
	}
	first := !w.started
	if err := w.start(); err != nil {
		return 0, err
	}
	n, err := w.cw.Write(p)
	if err == nil && first {
		err = w.Flush()
	}
	return n, err
}

// Flush sends buffered data now; a handler producing data slowly can call it (e.g. via an
// interface{ Flush() error } assertion) to keep the caller's reader moving.
func (w *streamRPCWriter) Flush() error {
	if w.cw.err != nil {
		return w.cw.err
	}
	w.cw.deadline()
	if err := w.cw.bw.Flush(); err != nil {
		w.cw.err = err
		return err
	}
	return nil
}

// readCallerHello reads the hello an rpc caller opens with: who is calling.
func readCallerHello(br *bufio.Reader) (Hello, error) {
	f, err := readFrame(br, maxHelloFrame, nil)
	if err != nil {
		return Hello{}, fmt.Errorf("read hello: %w", err)
	}
	return parseHello(f)
}

// watchHangUp cancels a handler's context if its caller hangs up (a forwarded query whose client went
// away must not run on). A caller sends nothing while it waits for its answer, so a read that returns
// means it is gone. stop ends the watch, before the answer is written, and reports whether the caller
// hung up; it leaves the read deadline in the past, for the caller to set before its next read. ok is
// false if the transport is closing.
func (t *Transport) watchHangUp(conn net.Conn, cancel context.CancelFunc) (stop func() (hungUp bool), ok bool) {
	_ = conn.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	if !t.spawn(func() {
		var b [1]byte
		_, err := conn.Read(b[:])
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			cancel()
		}
		done <- err
	}) {
		return nil, false
	}
	return func() bool {
		_ = conn.SetReadDeadline(aLongTimeAgo)
		err := <-done
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}, true
}
