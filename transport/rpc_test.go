package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/raftlite/raftlite/errcode"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRPCRoundTrip(t *testing.T) {
	cl := &countingListener{}
	b := startNode(t, 2, "", nil, withConfig(func(c *Config) {
		cl.Listener = c.Listener
		c.Listener = cl
	}))
	a := startNode(t, 1, "", nil)
	ctx := context.Background()
	for i := range 20 {
		req := fmt.Appendf(nil, "request %d", i)
		resp, err := a.tr.Call(ctx, b.addr, uint8(i), req)
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte{uint8(i)}, req...); !bytes.Equal(resp, want) {
			t.Fatalf("got %q, want %q", resp, want)
		}
	}
	// Empty request.
	if resp, err := a.tr.Call(ctx, b.addr, 9, nil); err != nil || !bytes.Equal(resp, []byte{9}) {
		t.Fatalf("%q %v", resp, err)
	}
	if n := cl.n.Load(); n != 1 {
		t.Errorf("%d connections for sequential calls; want the pooled one reused", n)
	}
}

func TestRPCRemoteError(t *testing.T) {
	hb := &fakeHandler{rpc: func(_ context.Context, method uint8, req []byte) ([]byte, error) {
		if method == 1 {
			return nil, fmt.Errorf("not the leader; leader is %s", req)
		}
		return req, nil
	}}
	b := startNode(t, 2, "", hb)
	a := startNode(t, 1, "", nil)
	_, err := a.tr.Call(context.Background(), b.addr, 1, []byte("node-3"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "not the leader; leader is node-3" || err.Error() != re.Msg {
		t.Fatalf("got %T %v", err, err)
	}
	if errors.Is(err, errcode.ErrNotLeader) {
		t.Error("an error without a code matched a sentinel")
	}
	// The connection survives a remote error.
	if resp, err := a.tr.Call(context.Background(), b.addr, 2, []byte("ok")); err != nil || string(resp) != "ok" {
		t.Fatalf("%q %v", resp, err)
	}
}

// An error with a code arrives with it: the caller tests it with errors.Is, not by its text.
func TestRPCRemoteErrorCode(t *testing.T) {
	hb := &fakeHandler{rpc: func(_ context.Context, method uint8, req []byte) ([]byte, error) {
		return nil, fmt.Errorf("%w: leadership moved", errcode.ErrNotLeader)
	}}
	b := startNode(t, 2, "", hb)
	a := startNode(t, 1, "", nil)
	for _, call := range []func() error{
		func() error { _, err := a.tr.Call(context.Background(), b.addr, 1, nil); return err },
		func() error { _, err := a.tr.CallOnce(context.Background(), b.addr, 1, nil); return err },
	} {
		err := call()
		if !errors.Is(err, errcode.ErrNotLeader) || errors.Is(err, errcode.ErrNoLeader) || err.Error() != "not leader: leadership moved" {
			t.Fatalf("got %T %v", err, err)
		}
	}
}

func TestRPCContext(t *testing.T) {
	release := make(chan struct{})
	hb := &fakeHandler{rpc: func(ctx context.Context, method uint8, req []byte) ([]byte, error) {
		if method == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return req, nil
	}}
	b := startNode(t, 2, "", hb)
	a := startNode(t, 1, "", nil)
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.tr.Call(ctx, b.addr, 1, []byte("slow"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("timeout honoured only after %v", took)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := a.tr.Call(ctx, b.addr, 1, []byte("slow")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	// The timed-out connections were discarded; a fresh call works.
	if resp, err := a.tr.Call(context.Background(), b.addr, 2, []byte("fast")); err != nil || string(resp) != "fast" {
		t.Fatalf("%q %v", resp, err)
	}
}

// A caller that gives up cancels the handler's context on the other node: a forwarded query whose client
// went away stops there too. A call that completes leaves the connection in the pool, still usable.
func TestRPCCallerHangUpCancelsHandler(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	hb := &fakeHandler{rpc: func(ctx context.Context, method uint8, req []byte) ([]byte, error) {
		if method == 1 {
			select {
			case <-ctx.Done():
				cancelled <- struct{}{}
			case <-time.After(time.Minute):
			}
		}
		return req, nil
	}}
	b := startNode(t, 2, "", hb)
	a := startNode(t, 1, "", nil)
	for i := range 3 { // the same pooled connection, call after call
		if resp, err := a.tr.Call(context.Background(), b.addr, 2, []byte{byte(i)}); err != nil || !bytes.Equal(resp, []byte{byte(i)}) {
			t.Fatalf("call %d: %q %v", i, resp, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := a.tr.Call(ctx, b.addr, 1, []byte("endless")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler ran on after its caller hung up")
	}
	if resp, err := a.tr.Call(context.Background(), b.addr, 2, []byte("after")); err != nil || string(resp) != "after" {
		t.Fatalf("%q %v", resp, err)
	}
}

func TestRPCConcurrent(t *testing.T) {
	b := startNode(t, 2, "", nil)
	a := startNode(t, 1, "", nil)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 32 {
		wg.Go(func() {
			for i := range 40 {
				req := fmt.Appendf(nil, "g%d-i%d", g, i)
				resp, err := a.tr.Call(context.Background(), b.addr, uint8(g), req)
				if err != nil || !bytes.Equal(resp[1:], req) || resp[0] != uint8(g) {
					failed.Add(1)
					t.Errorf("g%d i%d: %q %v", g, i, resp, err)
					return
				}
			}
		})
	}
	wg.Wait()
	a.tr.pool.mu.Lock()
	idle := len(a.tr.pool.idle[b.addr])
	a.tr.pool.mu.Unlock()
	if idle > maxIdlePerAddr {
		t.Errorf("%d idle connections pooled", idle)
	}
}

func TestRPCLargePayloads(t *testing.T) {
	hb := &fakeHandler{rpc: func(_ context.Context, _ uint8, req []byte) ([]byte, error) {
		sum := sha256.Sum256(req)
		return append(sum[:], bytes.Repeat(sum[:1], 6<<20)...), nil
	}}
	b := startNode(t, 2, "", hb)
	a := startNode(t, 1, "", nil)
	req := randomBytes(7<<20, 5)
	resp, err := a.tr.Call(context.Background(), b.addr, 1, req)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(req)
	if len(resp) != 32+6<<20 || !bytes.Equal(resp[:32], sum[:]) {
		t.Fatal("large request or response damaged")
	}

	small := startNode(t, 3, "", nil, withConfig(func(c *Config) { c.MaxFrame = 1 << 20 }))
	if _, err := small.tr.Call(context.Background(), b.addr, 1, req); err == nil ||
		!strings.Contains(err.Error(), "exceeds MaxFrame") {
		t.Fatalf("oversized request: %v", err)
	}
	// The response is over the caller's limit: the call fails instead of allocating it.
	if _, err := small.tr.Call(context.Background(), b.addr, 1, req[:1000]); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("oversized response: %v", err)
	}
}

// The server restarts between calls: the pooled connection is dead, and the call retries transparently.
func TestRPCServerRestart(t *testing.T) {
	b := startNode(t, 2, "", nil)
	var dials atomic.Int64
	a := startNode(t, 1, "", nil, withConfig(func(c *Config) {
		c.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}))
	if _, err := a.tr.Call(context.Background(), b.addr, 1, []byte("one")); err != nil {
		t.Fatal(err)
	}
	b.tr.Close()
	b2 := startNode(t, 2, b.addr, nil)
	resp, err := a.tr.Call(context.Background(), b2.addr, 1, []byte("two"))
	if err != nil || string(resp) != "\x01two" {
		t.Fatalf("%q %v", resp, err)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d dials, want 2 (the original and one retry)", n)
	}

	// With the server gone for good, the call fails (once the pooled conn is found dead, a fresh dial fails).
	b2.tr.Close()
	start := time.Now()
	if _, err := a.tr.Call(context.Background(), b2.addr, 1, []byte("three")); err == nil {
		t.Fatal("call to a stopped server succeeded")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("failing call took %v", took)
	}
}

func TestStreamRPC(t *testing.T) {
	data := randomBytes(20<<20+7, 6)
	hb := &fakeHandler{stream: func(ctx context.Context, method uint8, req []byte, w io.Writer) error {
		switch method {
		case 1: // a backup: big, written in odd-sized pieces
			for off := 0; off < len(data); {
				n := min(len(data)-off, 1+off%300000)
				if _, err := w.Write(data[off : off+n]); err != nil {
					return err
				}
				off += n
			}
			return nil
		case 2:
			return errors.New("no backup for you")
		case 3: // fails after data started
			w.Write(data[:100000])
			return errors.New("disk read error")
		case 4: // nothing at all
			return nil
		case 5: // blocks until the caller gives up
			w.Write([]byte("partial"))
			<-ctx.Done()
			return ctx.Err()
		}
		return fmt.Errorf("unknown method %d", method)
	}}
	b := startNode(t, 2, "", hb)
	a := startNode(t, 1, "", nil)
	ctx := context.Background()

	t.Run("large", func(t *testing.T) {
		r, err := a.tr.CallStream(ctx, b.addr, 1, []byte("backup"))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, err %v", len(got), err)
		}
	})
	t.Run("error before data", func(t *testing.T) {
		_, err := a.tr.CallStream(ctx, b.addr, 2, nil)
		var re *RemoteError
		if !errors.As(err, &re) || re.Msg != "no backup for you" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("error after data", func(t *testing.T) {
		r, err := a.tr.CallStream(ctx, b.addr, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read %d bytes, err %v", len(got), err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		r, err := a.tr.CallStream(ctx, b.addr, 4, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got, err := io.ReadAll(r); err != nil || len(got) != 0 {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("ctx cancelled mid-stream", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		r, err := a.tr.CallStream(cctx, b.addr, 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("corrupted", func(t *testing.T) {
		flipped := false
		c := startNode(t, 3, "", nil, withConfig(func(c *Config) {
			c.Dial = hookDialer(kindStreamRPC, func(hc *hookConn) {
				hc.onRead = func(off int64, p []byte) error {
					if !flipped && off+int64(len(p)) > 5<<20 {
						p[len(p)-1] ^= 0x80
						flipped = true
					}
					return nil
				}
			})
		}))
		r, err := c.tr.CallStream(ctx, b.addr, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := io.ReadAll(r); err == nil {
			t.Fatal("corrupted stream read without error")
		}
	})
}

func TestCallAfterClose(t *testing.T) {
	b := startNode(t, 2, "", nil)
	a := startNode(t, 1, "", nil)
	if _, err := a.tr.Call(context.Background(), b.addr, 1, nil); err != nil {
		t.Fatal(err)
	}
	a.tr.Close()
	if _, err := a.tr.Call(context.Background(), b.addr, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
	if _, err := a.tr.CallStream(context.Background(), b.addr, 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

// Close cuts calls in flight on both sides and waits for the handlers.
func TestCloseDuringCall(t *testing.T) {
	entered := make(chan struct{}, 1)
	hb := &fakeHandler{rpc: func(ctx context.Context, _ uint8, req []byte) ([]byte, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	b := startNode(t, 2, "", hb)
	a := startNode(t, 1, "", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := a.tr.Call(context.Background(), b.addr, 1, nil)
		errc <- err
	}()
	<-entered
	done := make(chan struct{})
	go func() { b.tr.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close hung")
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("call succeeded")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("call not cut by the server closing")
	}
}
