package transport

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// snapSource serves data for OpenSnapshot from a plain reader, hiding WriterTo so the copy goes through
// the transport's chunking the way a file or pipe would.
type snapSource struct{ r io.Reader }

func (s snapSource) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s snapSource) Close() error               { return nil }

func snapPair(t *testing.T, ha, hb *fakeHandler, opts ...nodeOpt) (*node, *node) {
	a := startNode(t, 1, "", ha, opts...)
	b := startNode(t, 2, "", hb)
	connect(a, b)
	return a, b
}

func waitSnapReport(t *testing.T, h *fakeHandler) report {
	t.Helper()
	waitFor(t, 10*time.Second, "snapshot report", func() bool { return len(h.snapReports()) > 0 })
	rs := h.snapReports()
	if len(rs) != 1 {
		t.Fatalf("want one snapshot report, got %v", rs)
	}
	return rs[0]
}

// A multi-MB snapshot arrives intact; the sender hears success.
func TestSnapshotLarge(t *testing.T) {
	data := randomBytes(12<<20+12345, 1)
	ha := &fakeHandler{open: func(m *raftpb.Message) (io.ReadCloser, error) {
		return snapSource{bytes.NewReader(data)}, nil
	}}
	var got *raftpb.Message
	var gotHello Hello
	hb := &fakeHandler{}
	hb.recv = func(h Hello, m *raftpb.Message, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		hb.mu.Lock()
		got, gotHello = m, h
		hb.received = append(hb.received, b)
		hb.mu.Unlock()
		return nil
	}
	a, _ := snapPair(t, ha, hb)
	a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 42, nil)})
	if r := waitSnapReport(t, ha); r.id != 2 || !r.ok {
		t.Fatalf("report %+v", r)
	}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if len(hb.received) != 1 || !bytes.Equal(hb.received[0], data) {
		t.Fatal("snapshot data differs")
	}
	if got.GetType() != raftpb.MsgSnap || got.GetSnapshot().GetMetadata().GetIndex() != 42 || got.GetFrom() != 1 {
		t.Fatalf("MsgSnap %v", got)
	}
	if gotHello.FromID != 1 || gotHello.ToID != 2 {
		t.Fatalf("hello %+v", gotHello)
	}
	if a.tr.Stats()[2].SnapshotInFlight {
		t.Error("snapshot still in flight")
	}
}

// A byte flipped in flight makes the receiver's data reader fail the checksum; the sender hears failure.
func TestSnapshotCorrupted(t *testing.T) {
	data := bytes.Repeat([]byte{0xAA}, 4<<20)
	ha := &fakeHandler{open: func(m *raftpb.Message) (io.ReadCloser, error) {
		return snapSource{bytes.NewReader(data)}, nil
	}}
	hb := &fakeHandler{}
	flipped := false
	corrupt := hookDialer(kindSnapshot, func(c *hookConn) {
		c.onWrite = func(off int64, p []byte) ([]byte, error) {
			// Past the hello and MsgSnap, the first 0xAA byte is data (chunk headers never contain 0xAA).
			if flipped || off+int64(len(p)) < 100000 {
				return p, nil
			}
			q := bytes.Clone(p)
			for i := max(0, int(100000-off)); i < len(q); i++ {
				if q[i] == 0xAA {
					q[i] ^= 0x01
					flipped = true
					break
				}
			}
			return q, nil
		}
	})
	a, _ := snapPair(t, ha, hb, withConfig(func(c *Config) { c.Dial = corrupt }))
	a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 7, nil)})
	if r := waitSnapReport(t, ha); r.ok {
		t.Fatal("sender reported success for a corrupted snapshot")
	}
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if len(hb.received) != 0 || len(hb.recvErrs) != 1 || !errors.Is(hb.recvErrs[0], errChecksum) {
		t.Fatalf("receiver: stored %d, errors %v", len(hb.received), hb.recvErrs)
	}
	if !strings.Contains(a.tr.Stats()[2].LastError, "checksum") {
		t.Errorf("sender's last error: %q", a.tr.Stats()[2].LastError)
	}
}

// A stream cut halfway makes the data reader fail (not EOF); the sender hears failure.
func TestSnapshotCut(t *testing.T) {
	data := randomBytes(4<<20, 2)
	ha := &fakeHandler{open: func(m *raftpb.Message) (io.ReadCloser, error) {
		return snapSource{bytes.NewReader(data)}, nil
	}}
	hb := &fakeHandler{}
	cut := hookDialer(kindSnapshot, func(c *hookConn) {
		c.onWrite = func(off int64, p []byte) ([]byte, error) {
			if off+int64(len(p)) > 2<<20 {
				return nil, errors.New("test: cable cut")
			}
			return p, nil
		}
	})
	a, _ := snapPair(t, ha, hb, withConfig(func(c *Config) { c.Dial = cut }))
	a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 7, nil)})
	if r := waitSnapReport(t, ha); r.ok {
		t.Fatal("sender reported success for a cut snapshot")
	}
	waitFor(t, 2*time.Second, "receiver's read error", func() bool {
		hb.mu.Lock()
		defer hb.mu.Unlock()
		return len(hb.recvErrs) == 1
	})
	hb.mu.Lock()
	defer hb.mu.Unlock()
	if err := hb.recvErrs[0]; errors.Is(err, io.EOF) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("receiver's error: %v", err)
	}
	if len(hb.received) != 0 {
		t.Fatal("cut snapshot stored")
	}
}

// OpenSnapshot failing, the receiver's handler failing, and an unknown peer all report failure.
func TestSnapshotFailures(t *testing.T) {
	t.Run("open error", func(t *testing.T) {
		ha := &fakeHandler{open: func(*raftpb.Message) (io.ReadCloser, error) { return nil, errors.New("disk gone") }}
		a, b := snapPair(t, ha, nil)
		a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 7, nil)})
		if r := waitSnapReport(t, ha); r.ok || r.id != 2 {
			t.Fatalf("report %+v", r)
		}
		if !strings.Contains(a.tr.Stats()[2].LastError, "disk gone") {
			t.Errorf("last error %q", a.tr.Stats()[2].LastError)
		}
		if b.h.count.Load() != 0 {
			t.Error("receiver got something")
		}
	})
	t.Run("receiver error", func(t *testing.T) {
		ha := &fakeHandler{}
		hb := &fakeHandler{recv: func(Hello, *raftpb.Message, io.Reader) error { return errors.New("no space left") }}
		a, _ := snapPair(t, ha, hb)
		a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 7, randomBytes(3<<20, 3))})
		if r := waitSnapReport(t, ha); r.ok {
			t.Fatal("success reported")
		}
	})
	t.Run("receiver stops reading early", func(t *testing.T) {
		// A handler that returns nil without reading to EOF: the transport verifies the rest itself.
		ha := &fakeHandler{}
		hb := &fakeHandler{recv: func(_ Hello, _ *raftpb.Message, r io.Reader) error {
			_, err := io.ReadFull(r, make([]byte, 10))
			return err
		}}
		a, _ := snapPair(t, ha, hb)
		a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 7, randomBytes(1<<20, 4))})
		if r := waitSnapReport(t, ha); !r.ok {
			t.Fatal("failure reported for an intact stream")
		}
	})
	t.Run("rejected stream", func(t *testing.T) {
		ha := &fakeHandler{}
		hb := &fakeHandler{accept: func(Hello) error { return errors.New("not today") }}
		a, _ := snapPair(t, ha, hb)
		a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 7, []byte("data"))})
		if r := waitSnapReport(t, ha); r.ok {
			t.Fatal("success reported")
		}
		if !strings.Contains(a.tr.Stats()[2].LastError, "not today") {
			t.Errorf("last error %q", a.tr.Stats()[2].LastError)
		}
	})
	t.Run("unknown peer", func(t *testing.T) {
		a := startNode(t, 1, "", nil)
		a.tr.Send([]*raftpb.Message{msgSnap(1, 9, 7, nil)})
		if r := waitSnapReport(t, a.h); r.ok || r.id != 9 {
			t.Fatalf("report %+v", r)
		}
		waitFor(t, time.Second, "unreachable", func() bool { return a.h.unreachableCount(9) == 1 })
	})
}

// A second MsgSnap while one is in flight fails at once; the first still completes.
func TestSnapshotOneInFlight(t *testing.T) {
	release := make(chan struct{})
	ha := &fakeHandler{open: func(m *raftpb.Message) (io.ReadCloser, error) {
		<-release
		return io.NopCloser(strings.NewReader("snapshot")), nil
	}}
	a, b := snapPair(t, ha, nil)
	a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 7, nil)})
	waitFor(t, time.Second, "in flight", func() bool { return a.tr.Stats()[2].SnapshotInFlight })
	a.tr.Send([]*raftpb.Message{msgSnap(1, 2, 8, nil)})
	waitFor(t, time.Second, "immediate failure", func() bool { return len(ha.snapReports()) == 1 })
	if r := ha.snapReports()[0]; r.ok {
		t.Fatal("second snapshot reported ok")
	}
	close(release)
	waitFor(t, 5*time.Second, "first snapshot", func() bool { return len(ha.snapReports()) == 2 })
	if r := ha.snapReports()[1]; !r.ok {
		t.Fatal("first snapshot failed")
	}
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	if len(b.h.received) != 1 || string(b.h.received[0]) != "snapshot" {
		t.Fatalf("received %q", b.h.received)
	}
}
