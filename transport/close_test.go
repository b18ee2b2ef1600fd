package transport

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Close stops every goroutine the transports started, with traffic of every kind having flowed (and a
// stream still open).
func TestCloseLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		a := startNode(t, 1, "", nil)
		b := startNode(t, 2, "", nil)
		connect(a, b)
		a.tr.Send([]*raftpb.Message{msgApp(1, 2, 1, nil), msgSnap(1, 2, 2, []byte("snap"))})
		b.tr.Send([]*raftpb.Message{msgApp(2, 1, 1, nil)})
		waitFor(t, 2*time.Second, "traffic", func() bool {
			return a.h.count.Load() == 1 && b.h.count.Load() == 1 && len(a.h.snapReports()) == 1
		})
		if _, err := a.tr.Call(context.Background(), b.addr, 1, []byte("x")); err != nil {
			t.Fatal(err)
		}
		r, err := a.tr.CallStream(context.Background(), b.addr, 1, bytes.Repeat([]byte("y"), 100))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			a.tr.Close()
			b.tr.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close hung")
		}
		if err := a.tr.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		a.tr.Send([]*raftpb.Message{msgApp(1, 2, 3, nil)}) // after Close: a no-op, not a panic
		a.tr.SetPeer(3, "node-3", b.addr)
		if len(a.tr.Stats()) != 0 {
			t.Error("peers left after Close")
		}
	}()
	waitFor(t, 2*time.Second, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= base })
}

func TestNewValidates(t *testing.T) {
	ln := &countingListener{}
	for _, cfg := range []Config{
		{Listener: ln, Handler: &fakeHandler{}},
		{ID: 1, Handler: &fakeHandler{}},
		{ID: 1, Listener: ln},
		{ID: 1, Listener: ln, Handler: &fakeHandler{}, QueueSize: -1},
		{ID: 1, Listener: ln, Handler: &fakeHandler{}, NodeID: string(make([]byte, 3000))},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
