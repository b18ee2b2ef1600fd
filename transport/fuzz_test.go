package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// FuzzReadFrame: arbitrary bytes never panic the frame reader, never yield a frame over the limit, and
// whatever it accepts re-encodes to exactly the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{3, 'a', 'b', 'c', 0, 1, 'x'})
	f.Add(binary.AppendUvarint(nil, 1<<63))
	f.Add(bytes.Repeat([]byte{0xff}, 11))
	// Claims above frameStep take the stepped path; keep seeds small so minimisation stays quick.
	f.Add(append(binary.AppendUvarint(nil, 70000), make([]byte, 1000)...))
	f.Add(append(binary.AppendUvarint(nil, 200000), make([]byte, 100)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 100000
		br := bufio.NewReaderSize(bytes.NewReader(data), 16)
		var frames [][]byte
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		for {
			fr, err := readFrame(br, limit, nil)
			if err != nil {
				break
			}
			if len(fr) > limit {
				t.Fatalf("frame of %d bytes over the limit", len(fr))
			}
			frames = append(frames, fr)
			if err := writeFrame(bw, fr); err != nil {
				t.Fatal(err)
			}
		}
		bw.Flush()
		// Re-encoding uses minimal varints, so compare decoded frames (the input may pad its varints).
		again := bufio.NewReader(&out)
		for i, want := range frames {
			got, err := readFrame(again, limit, nil)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("frame %d did not survive re-encoding: %v", i, err)
			}
		}
		if _, err := readFrame(again, limit, nil); err != io.EOF {
			t.Fatalf("re-encoding produced extra data: %v", err)
		}
	})
}

// FuzzHello: parseHello never panics, and a hello it accepts survives a marshal/parse round trip.
func FuzzHello(f *testing.F) {
	good, _ := Hello{FromID: 1, FromNodeID: "a", FromAddr: "127.0.0.1:1", ToID: 2, ToNodeID: "b"}.marshal()
	f.Add(good)
	withCluster, _ := Hello{FromID: 1, FromClusterID: 1 << 40, ToID: 2}.marshal()
	f.Add(withCluster)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0x80})
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHello(data)
		if err != nil {
			return
		}
		b, err := h.marshal()
		if err != nil {
			if len(data) <= maxHelloFrame {
				t.Fatalf("accepted a %d-byte hello it cannot re-encode: %v", len(data), err)
			}
			return
		}
		h2, err := parseHello(b)
		if err != nil || h2 != h {
			t.Fatalf("round trip: %+v -> %+v (%v)", h, h2, err)
		}
	})
}

// FuzzRaftStream feeds arbitrary bytes into the inbound raft stream (after the kind byte): hello, handshake
// and message frames. Nothing may panic, and only messages from the hello's sender to us are delivered.
func FuzzRaftStream(f *testing.F) {
	tr, h := fuzzTransport(f)
	hello := helloBytes(f, Hello{FromID: 1, FromNodeID: "n1", ToID: 2})
	var msgs []byte
	for i := range 3 {
		msgs = append(msgs, frame(mustMarshal(f, msgApp(1, 2, uint64(i), []byte("data"))))...)
	}
	f.Add(hello)
	f.Add(append(bytes.Clone(hello), msgs...))
	f.Add(append(bytes.Clone(hello), frame(mustMarshal(f, msgSnap(1, 2, 1, []byte("x"))))...))
	f.Add(append(bytes.Clone(hello), 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Add(append(bytes.Clone(hello), frame([]byte{0x08, 0x03, 0x10})...))
	f.Fuzz(func(t *testing.T, data []byte) {
		h.reset()
		tr.serveConn(newFakeConn(append([]byte{kindRaft}, data...)))
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, m := range h.msgs {
			if m.GetTo() != 2 || m.GetType() == raftpb.MsgSnap {
				t.Fatalf("delivered %v", m)
			}
		}
	})
}

// FuzzServeConn is FuzzRaftStream for every connection kind: snapshots, rpc and stream rpc too.
func FuzzServeConn(f *testing.F) {
	tr, h := fuzzTransport(f)
	hello := helloBytes(f, Hello{FromID: 1, ToID: 2})
	snap := frame(mustMarshal(f, msgSnap(1, 2, 5, nil)))
	f.Add([]byte{kindRPC, 3, 1, 'h', 'i', 2, 2, 'x'})
	f.Add([]byte{kindStreamRPC, 3, 1, 'h', 'i'})
	f.Add(cat([]byte{kindSnapshot}, hello, snap, frame([]byte("abc")), []byte{0}, make([]byte, 12)))
	f.Add(cat([]byte{kindSnapshot}, hello, snap, []byte{0}, make([]byte, 12)))
	f.Add(cat([]byte{kindRaft}, hello, frame(mustMarshal(f, msgApp(1, 2, 1, nil)))))
	f.Add(cat([]byte{kindRaftControl}, hello, frame(mustMarshal(f, msgOf(raftpb.MsgHeartbeat, 1, 2)))))
	f.Fuzz(func(t *testing.T, data []byte) {
		h.reset()
		tr.serveConn(newFakeConn(data))
	})
}

// fuzzTransport is a Transport that is never started: fuzz targets call serveConn on fake connections.
func fuzzTransport(f *testing.F) (*Transport, *fakeHandler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	h := &fakeHandler{}
	tr, err := New(Config{ID: 2, NodeID: "n2", Listener: ln, Handler: h, Logger: quietLogs, MaxFrame: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tr.Close() })
	return tr, h
}

func (h *fakeHandler) reset() {
	h.mu.Lock()
	h.msgs, h.batches, h.received, h.recvErrs = nil, nil, nil, nil
	h.mu.Unlock()
}

// fakeConn is a net.Conn that reads from a fixed input and discards writes; deadlines are no-ops.
type fakeConn struct {
	mu     sync.Mutex
	r      *bytes.Reader
	closed bool
}

func newFakeConn(in []byte) *fakeConn { return &fakeConn{r: bytes.NewReader(in)} }

func (c *fakeConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *fakeConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

var _ io.ReadWriteCloser = (*fakeConn)(nil)
