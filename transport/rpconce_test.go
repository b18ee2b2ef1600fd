package transport

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// A forwarded write must reach the server at most once, and a pooled connection left stale by a server
// restart must not make it fail.
func TestCallOnceAfterServerRestart(t *testing.T) {
	var calls atomic.Int64
	h := &fakeHandler{rpc: func(ctx context.Context, method uint8, req []byte) ([]byte, error) {
		calls.Add(1)
		return req, nil
	}}
	server := startNode(t, 1, "", h)
	client := startNode(t, 2, "", nil)
	if _, err := client.tr.CallOnce(context.Background(), server.addr, 9, []byte("x")); err != nil {
		t.Fatal(err)
	}
	server.tr.Close()
	time.Sleep(50 * time.Millisecond)
	startNode(t, 1, server.addr, h)
	if _, err := client.tr.CallOnce(context.Background(), server.addr, 9, []byte("y")); err != nil {
		t.Fatalf("call after the server restarted: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("handler ran %d times for 2 calls", n)
	}
}

// alive must see through the transport's own wrapper to the socket: otherwise it falls back to waiting a
// millisecond, which every forwarded request would pay.
func TestAliveSeesTheSocket(t *testing.T) {
	server := startNode(t, 1, "", nil)
	client := startNode(t, 2, "", nil)
	c, err := client.tr.dialRPC(context.Background(), server.addr, kindRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	conn := socketOf(c.conn)
	if _, known := peekAlive(conn); !known {
		t.Fatalf("peekAlive cannot look at %T beneath %T", conn, c.conn)
	}
}
