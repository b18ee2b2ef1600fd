package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// fakeHandler records what the transport delivers; tests override behaviour through the function fields.
type fakeHandler struct {
	mu          sync.Mutex
	msgs        []*raftpb.Message
	batches     []int
	unreachable []report // times in unreachAt
	unreachAt   []time.Time
	snaps       []report
	received    [][]byte // snapshot data stored by the default ReceiveSnapshot
	recvErrs    []error  // errors the snapshot data reader returned
	count       atomic.Int64

	countOnly bool // benchmarks: count messages, keep nothing

	accept func(Hello) error
	open   func(*raftpb.Message) (io.ReadCloser, error)
	recv   func(Hello, *raftpb.Message, io.Reader) error
	rpc    func(context.Context, uint8, []byte) ([]byte, error)
	stream func(context.Context, uint8, []byte, io.Writer) error
}

func (h *fakeHandler) AcceptStream(hello Hello) error {
	if h.accept != nil {
		return h.accept(hello)
	}
	return nil
}

func (h *fakeHandler) HandleMessages(msgs []*raftpb.Message) {
	h.count.Add(int64(len(msgs)))
	if h.countOnly {
		return
	}
	h.mu.Lock()
	h.msgs = append(h.msgs, msgs...)
	h.batches = append(h.batches, len(msgs))
	h.mu.Unlock()
}

func (h *fakeHandler) ReportUnreachable(id uint64) {
	h.mu.Lock()
	h.unreachable = append(h.unreachable, report{id: id, unreachable: true})
	h.unreachAt = append(h.unreachAt, time.Now())
	h.mu.Unlock()
}

func (h *fakeHandler) ReportSnapshot(id uint64, ok bool) {
	h.mu.Lock()
	h.snaps = append(h.snaps, report{id: id, ok: ok})
	h.mu.Unlock()
}

func (h *fakeHandler) OpenSnapshot(m *raftpb.Message) (io.ReadCloser, error) {
	if h.open != nil {
		return h.open(m)
	}
	return io.NopCloser(bytes.NewReader(m.GetSnapshot().GetData())), nil
}

func (h *fakeHandler) ReceiveSnapshot(hello Hello, m *raftpb.Message, data io.Reader) error {
	if h.recv != nil {
		return h.recv(hello, m, data)
	}
	b, err := io.ReadAll(data)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.recvErrs = append(h.recvErrs, err)
		return err
	}
	h.received = append(h.received, b)
	return nil
}

func (h *fakeHandler) HandleRPC(ctx context.Context, method uint8, req []byte) ([]byte, error) {
	if h.rpc != nil {
		return h.rpc(ctx, method, req)
	}
	return append([]byte{method}, req...), nil
}

func (h *fakeHandler) HandleStreamRPC(ctx context.Context, method uint8, req []byte, w io.Writer) error {
	if h.stream != nil {
		return h.stream(ctx, method, req, w)
	}
	_, err := w.Write(req)
	return err
}

func (h *fakeHandler) messages() []*raftpb.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*raftpb.Message(nil), h.msgs...)
}

func (h *fakeHandler) unreachableCount(id uint64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.unreachable {
		if r.id == id {
			n++
		}
	}
	return n
}

func (h *fakeHandler) unreachableTimes(id uint64) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ts []time.Time
	for i, r := range h.unreachable {
		if r.id == id {
			ts = append(ts, h.unreachAt[i])
		}
	}
	return ts
}

func (h *fakeHandler) snapReports() []report {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]report(nil), h.snaps...)
}

// node is one transport under test.
type node struct {
	id   uint64
	addr string
	tr   *Transport
	h    *fakeHandler
}

type nodeOpt func(*Config, *Transport)

// withConfig edits the Config before New; withLimits edits the transport's limits before Start.
func withConfig(f func(*Config)) nodeOpt {
	return func(c *Config, t *Transport) {
		if t == nil {
			f(c)
		}
	}
}
func withLimits(f func(*limits)) nodeOpt {
	return func(_ *Config, t *Transport) {
		if t != nil {
			f(&t.lim)
		}
	}
}

var quietLogs = slog.New(slog.NewTextHandler(io.Discard, nil))

// testLogger logs to the test when -v is on; the transport's Warn lines help when a test fails.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return quietLogs
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// startNode starts a transport on addr ("" = a fresh port on 127.0.0.1) and closes it at test end.
func startNode(t testing.TB, id uint64, addr string, h *fakeHandler, opts ...nodeOpt) *node {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// Rebinding a just-closed port can briefly fail; retry instead of flaking.
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	if h == nil {
		h = &fakeHandler{}
	}
	cfg := Config{
		ID: id, NodeID: fmt.Sprintf("node-%d", id), Addr: ln.Addr().String(),
		Listener: ln, Handler: h, Logger: testLogger(t),
	}
	for _, o := range opts {
		o(&cfg, nil)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(&cfg, tr)
	}
	tr.Start()
	t.Cleanup(func() { tr.Close() })
	return &node{id: id, addr: ln.Addr().String(), tr: tr, h: h}
}

// connect makes every node a peer of every other.
func connect(nodes ...*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.tr.SetPeer(b.id, fmt.Sprintf("node-%d", b.id), b.addr)
			}
		}
	}
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func msgApp(from, to, index uint64, data []byte) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: new(from), To: new(to), Term: new(uint64(1)),
		Index: new(index), Commit: new(index),
		Entries: []*raftpb.Entry{{Term: new(uint64(1)), Index: new(index + 1), Data: data}},
	}
}

func msgSnap(from, to, index uint64, data []byte) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(), From: new(from), To: new(to), Term: new(uint64(1)),
		Snapshot: &raftpb.Snapshot{
			Data: data,
			Metadata: &raftpb.SnapshotMetadata{
				Index: new(index), Term: new(uint64(1)),
				ConfState: &raftpb.ConfState{Voters: []uint64{from, to}},
			},
		},
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hookConn lets tests damage a connection: onWrite/onRead may rewrite the bytes passing through (with their
// offset in the stream) or return an error to cut it.
type hookConn struct {
	net.Conn
	mu      sync.Mutex
	wOff    int64
	rOff    int64
	onWrite func(off int64, p []byte) ([]byte, error)
	onRead  func(off int64, p []byte) error
}

func (c *hookConn) Write(p []byte) (int, error) {
	if c.onWrite == nil {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	off := c.wOff
	c.wOff += int64(len(p))
	c.mu.Unlock()
	q, err := c.onWrite(off, p)
	if err != nil {
		c.Conn.Close()
		return 0, err
	}
	if _, err := c.Conn.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *hookConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.onRead != nil && n > 0 {
		c.mu.Lock()
		off := c.rOff
		c.rOff += int64(n)
		c.mu.Unlock()
		if herr := c.onRead(off, p[:n]); herr != nil {
			c.Conn.Close()
			return 0, herr
		}
	}
	return n, err
}

// hookDialer dials TCP and wraps conns of the given kind (first byte written) with the hooks.
func hookDialer(kind byte, wrap func(*hookConn)) Dialer {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &kindSniffConn{Conn: c, kind: kind, wrap: wrap}, nil
	}
}

// kindSniffConn applies the hooks only once the first written byte shows the connection's kind.
type kindSniffConn struct {
	net.Conn
	kind    byte
	wrap    func(*hookConn)
	decided bool
	hc      *hookConn
}

func (c *kindSniffConn) Write(p []byte) (int, error) {
	if !c.decided && len(p) > 0 {
		c.decided = true
		if p[0] == c.kind {
			c.hc = &hookConn{Conn: c.Conn}
			c.wrap(c.hc)
		}
	}
	if c.hc != nil {
		return c.hc.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *kindSniffConn) Read(p []byte) (int, error) {
	if c.hc != nil {
		return c.hc.Read(p)
	}
	return c.Conn.Read(p)
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func mustMarshal(t testing.TB, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
