package transport

import (
	"bufio"
	"net"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func msgOf(typ raftpb.MessageType, from, to uint64) *raftpb.Message {
	return &raftpb.Message{Type: typ.Enum(), From: new(from), To: new(to), Term: new(uint64(1))}
}

// A heartbeat, a vote and an append answer reach the peer while an append is stuck on the wire: they
// travel on a stream of their own.
func TestControlMessagesPassAStuckAppend(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	stall := hookDialer(kindRaft, func(c *hookConn) {
		c.onWrite = func(off int64, p []byte) ([]byte, error) {
			if len(p) > 64<<10 { // the large append's frame, not the handshake
				<-release
			}
			return p, nil
		}
	})
	a := startNode(t, 1, "", nil, withConfig(func(c *Config) { c.Dial = stall }))
	b := startNode(t, 2, "", nil)
	t.Cleanup(unblock) // before the transports close (cleanups run last first): Close waits for the writer
	connect(a, b)

	a.tr.Send([]*raftpb.Message{msgApp(1, 2, 7, make([]byte, 1<<20))})
	control := []raftpb.MessageType{raftpb.MsgHeartbeat, raftpb.MsgVote, raftpb.MsgAppResp, raftpb.MsgTimeoutNow}
	for _, typ := range control {
		a.tr.Send([]*raftpb.Message{msgOf(typ, 1, 2)})
	}
	waitFor(t, 10*time.Second, "the control messages to pass the stuck append", func() bool {
		return b.h.count.Load() == int64(len(control))
	})
	for i, m := range b.h.messages() {
		if m.GetType() != control[i] {
			t.Fatalf("message %d: %v, want %v (in order)", i, m.GetType(), control[i])
		}
	}
	unblock()
	waitFor(t, 10*time.Second, "the append once the stream moves again", func() bool {
		return b.h.count.Load() == int64(len(control))+1
	})
	if m := b.h.messages()[len(control)]; m.GetType() != raftpb.MsgApp || m.GetIndex() != 7 {
		t.Fatalf("last message: %v", m)
	}
	st := a.tr.Stats()[2]
	if !st.Connected || !st.ControlConnected || st.Dropped != 0 || st.Sent != uint64(len(control))+1 {
		t.Fatalf("stats: %+v", st)
	}
}

// olderListener plays a node of an older version: it closes, without a word, every connection of the
// control stream's kind, which it does not know.
type olderListener struct {
	net.Listener
	refused chan struct{}
}

func (l *olderListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		br := bufio.NewReader(c)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		kind, err := br.Peek(1)
		_ = c.SetReadDeadline(time.Time{})
		if err == nil && kind[0] == kindRaftControl {
			c.Close()
			select {
			case l.refused <- struct{}{}:
			default:
			}
			continue
		}
		return &peekedConn{Conn: c, br: br}, nil
	}
}

type peekedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// A peer that refuses the control stream (an older version) still gets every message, on the append
// stream, in order.
func TestControlMessagesFallBackForAnOlderPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	older := &olderListener{Listener: ln, refused: make(chan struct{}, 1)}
	h := &fakeHandler{}
	tr, err := New(Config{ID: 2, NodeID: "node-2", Addr: ln.Addr().String(), Listener: older, Handler: h, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tr.Start()
	t.Cleanup(func() { tr.Close() })
	b := &node{id: 2, addr: ln.Addr().String(), tr: tr, h: h}
	a := startNode(t, 1, "", nil)
	connect(a, b)

	a.tr.Send([]*raftpb.Message{msgOf(raftpb.MsgHeartbeat, 1, 2)})
	select {
	case <-older.refused:
	case <-time.After(10 * time.Second):
		t.Fatal("the control stream was never tried")
	}
	const n = 50
	for i := uint64(0); i < n; i++ {
		a.tr.Send([]*raftpb.Message{msgApp(1, 2, i, payload(1, i)), msgOf(raftpb.MsgHeartbeat, 1, 2)})
	}
	waitFor(t, 10*time.Second, "every message on the append stream", func() bool {
		return h.count.Load() >= 2*n
	})
	next := uint64(0)
	for _, m := range h.messages() {
		if m.GetType() == raftpb.MsgApp {
			if m.GetIndex() != next {
				t.Fatalf("append %d arrived out of order (want %d)", m.GetIndex(), next)
			}
			next++
		}
	}
	if st := a.tr.Stats()[2]; st.ControlConnected || !st.Connected {
		t.Fatalf("stats: %+v", st)
	}
}
