package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func payload(from, index uint64) []byte {
	return fmt.Appendf(nil, "entry %d from %d %s", index, from, strings.Repeat("x", int(index%97)))
}

// Messages between three transports arrive in order and intact, and a burst is delivered in batches.
func TestRaftMessagesInOrder(t *testing.T) {
	nodes := []*node{startNode(t, 1, "", nil), startNode(t, 2, "", nil), startNode(t, 3, "", nil)}
	connect(nodes...)
	const n = 3000
	for _, a := range nodes {
		go func() {
			for i := uint64(0); i < n; {
				var batch []*raftpb.Message
				for k := 0; k < 1+int(i%50) && i < n; k++ {
					for _, b := range nodes {
						if b != a {
							batch = append(batch, msgApp(a.id, b.id, i, payload(a.id, i)))
						}
					}
					i++
				}
				a.tr.Send(batch)
				if i%500 == 0 {
					time.Sleep(time.Millisecond) // stay within the queue: this test is about order, not drops
				}
			}
		}()
	}
	for _, b := range nodes {
		waitFor(t, 10*time.Second, fmt.Sprintf("node %d to receive all messages", b.id), func() bool {
			return b.h.count.Load() == 2*n
		})
	}
	for _, b := range nodes {
		next := map[uint64]uint64{}
		for _, m := range b.h.messages() {
			from := m.GetFrom()
			if m.GetTo() != b.id || m.GetType() != raftpb.MsgApp {
				t.Fatalf("node %d got %v", b.id, m)
			}
			if m.GetIndex() != next[from] {
				t.Fatalf("node %d: from %d got index %d, want %d", b.id, from, m.GetIndex(), next[from])
			}
			if got, want := m.GetEntries()[0].GetData(), payload(from, next[from]); !bytes.Equal(got, want) {
				t.Fatalf("node %d: entry %d from %d corrupted: %q", b.id, next[from], from, got)
			}
			next[from]++
		}
		largest := 0
		b.h.mu.Lock()
		for _, k := range b.h.batches {
			largest = max(largest, k)
		}
		nb := len(b.h.batches)
		b.h.mu.Unlock()
		t.Logf("node %d: %d messages in %d batches, largest %d", b.id, 2*n, nb, largest)
		if largest < 2 {
			t.Errorf("node %d: no batching under load", b.id)
		}
		for id, st := range b.tr.Stats() {
			if st.Sent != n || st.Dropped != 0 || !st.Connected {
				t.Errorf("node %d stats for %d: %+v", b.id, id, st)
			}
		}
	}
}

// A peer that is down: Send keeps returning at once, drops, and reports unreachable at most every 100 ms.
func TestSendNeverBlocksPeerDown(t *testing.T) {
	a := startNode(t, 1, "", nil, withConfig(func(c *Config) { c.QueueSize = 8 }))
	a.tr.SetPeer(2, "node-2", freeAddr(t))
	start := time.Now()
	var slowest time.Duration
	sent := 0
	for time.Since(start) < 600*time.Millisecond {
		batch := make([]*raftpb.Message, 100)
		for i := range batch {
			batch[i] = msgApp(1, 2, uint64(sent+i), []byte("x"))
		}
		t0 := time.Now()
		a.tr.Send(batch)
		slowest = max(slowest, time.Since(t0))
		sent += len(batch)
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	if slowest > 20*time.Millisecond {
		t.Errorf("Send took %v", slowest)
	}
	waitFor(t, time.Second, "an unreachable report", func() bool { return a.h.unreachableCount(2) > 0 })
	checkRateLimited(t, a.h.unreachableTimes(2), elapsed)
	st := a.tr.Stats()[2]
	if st.Dropped == 0 || st.Connected || st.LastError == "" {
		t.Errorf("stats: %+v", st)
	}
	t.Logf("%d sent, slowest Send %v, %d unreachable reports in %v, stats %+v",
		sent, slowest, a.h.unreachableCount(2), elapsed, st)
}

func checkRateLimited(t *testing.T, ts []time.Time, elapsed time.Duration) {
	t.Helper()
	for i := 1; i < len(ts); i++ {
		if gap := ts[i].Sub(ts[i-1]); gap < 90*time.Millisecond {
			t.Errorf("unreachable reports %d and %d only %v apart", i-1, i, gap)
		}
	}
	if limit := int(elapsed/unreachableInterval) + 2; len(ts) > limit {
		t.Errorf("%d unreachable reports in %v (limit %d)", len(ts), elapsed, limit)
	}
}

// fakeStuckPeer accepts raft streams, answers the handshake with OK, and then never reads.
func fakeStuckPeer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetReadBuffer(4 << 10)
				}
				br := bufio.NewReader(c)
				br.ReadByte()
				readFrame(br, maxHelloFrame, nil)
				c.Write([]byte{1, statusOK})
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// A peer that accepts the stream but never reads: the socket fills, the queue fills, Send still returns at
// once, drops, and reports unreachable (rate-limited).
func TestSendNeverBlocksPeerNotReading(t *testing.T) {
	a := startNode(t, 1, "", nil, withConfig(func(c *Config) { c.QueueSize = 16 }))
	a.tr.SetPeer(2, "node-2", fakeStuckPeer(t))
	big := bytes.Repeat([]byte("y"), 256<<10)
	start := time.Now()
	var slowest time.Duration
	for i := 0; time.Since(start) < 800*time.Millisecond; i++ {
		t0 := time.Now()
		a.tr.Send([]*raftpb.Message{msgApp(1, 2, uint64(i), big)})
		slowest = max(slowest, time.Since(t0))
		if i%16 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	elapsed := time.Since(start)
	if slowest > 20*time.Millisecond {
		t.Errorf("Send took %v", slowest)
	}
	st := a.tr.Stats()[2]
	if !st.Connected || st.Dropped == 0 || st.Queued == 0 {
		t.Errorf("want connected, queue backed up and drops; stats %+v", st)
	}
	if a.h.unreachableCount(2) == 0 {
		t.Error("no unreachable report")
	}
	checkRateLimited(t, a.h.unreachableTimes(2), elapsed)
	t.Logf("slowest Send %v, stats %+v, %d reports", slowest, st, a.h.unreachableCount(2))
}

// A peer that restarts on the same address is reached again within about a second.
func TestPeerRestart(t *testing.T) {
	a := startNode(t, 1, "", nil)
	b := startNode(t, 2, "", nil)
	connect(a, b)
	stop := make(chan struct{})
	ticker := func(from, to *node) {
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond): // like raft heartbeats
			}
			from.tr.Send([]*raftpb.Message{msgApp(from.id, to.id, i, nil)})
		}
	}
	go ticker(a, b)
	defer close(stop)
	waitFor(t, 2*time.Second, "first messages", func() bool { return b.h.count.Load() > 0 })

	b.tr.Close()
	time.Sleep(300 * time.Millisecond) // a is now backing off
	restarted := time.Now()
	b2 := startNode(t, 2, b.addr, nil)
	b2.tr.SetPeer(1, "node-1", a.addr)
	go ticker(b2, a)
	waitFor(t, 2*time.Second, "messages to the restarted peer", func() bool { return b2.h.count.Load() > 0 })
	took := time.Since(restarted)
	t.Logf("restarted peer reached after %v", took)
	if took > 1200*time.Millisecond {
		t.Errorf("restarted peer reached only after %v", took)
	}
	before := a.h.count.Load()
	waitFor(t, 2*time.Second, "messages from the restarted peer", func() bool { return a.h.count.Load() > before })
	if !a.tr.Stats()[2].Connected {
		t.Error("stats say not connected")
	}
}

// AcceptStream's rejection reaches the dialer: no messages are delivered, the peer is reported unreachable
// and the rejection text is kept in the stats.
func TestAcceptStreamRejected(t *testing.T) {
	var seen []Hello
	hb := &fakeHandler{}
	hb.accept = func(h Hello) error {
		hb.mu.Lock()
		seen = append(seen, h)
		hb.mu.Unlock()
		return fmt.Errorf("node %d was removed from the cluster", h.FromID)
	}
	a := startNode(t, 1, "", nil)
	b := startNode(t, 2, "", hb)
	a.tr.SetClusterID(0xc1)
	a.tr.SetPeer(2, "node-2", b.addr)
	for i := 0; i < 20; i++ {
		a.tr.Send([]*raftpb.Message{msgApp(1, 2, uint64(i), nil)})
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, time.Second, "unreachable report", func() bool { return a.h.unreachableCount(2) > 0 })
	st := a.tr.Stats()[2]
	if !strings.Contains(st.LastError, "node 1 was removed from the cluster") || st.Connected {
		t.Errorf("stats: %+v", st)
	}
	if n := hb.count.Load(); n != 0 {
		t.Errorf("%d messages delivered through a rejected stream", n)
	}
	hb.mu.Lock()
	h := seen[0]
	hb.mu.Unlock()
	want := Hello{FromID: 1, FromNodeID: "node-1", FromAddr: a.addr, FromClusterID: 0xc1, ToID: 2, ToNodeID: "node-2"}
	if h != want {
		t.Errorf("hello %+v, want %+v", h, want)
	}
}

// SetPeer with a new address moves the stream; RemovePeer drops the peer.
func TestSetPeerAddressAndRemove(t *testing.T) {
	a := startNode(t, 1, "", nil)
	b1 := startNode(t, 2, "", nil)
	b2 := startNode(t, 2, "", nil)
	a.tr.SetPeer(2, "node-2", b1.addr)
	a.tr.Send([]*raftpb.Message{msgApp(1, 2, 0, nil)})
	waitFor(t, time.Second, "delivery to the first address", func() bool { return b1.h.count.Load() == 1 })

	a.tr.SetPeer(2, "node-2", b2.addr)
	waitFor(t, 2*time.Second, "delivery to the new address", func() bool {
		a.tr.Send([]*raftpb.Message{msgApp(1, 2, 1, nil)})
		time.Sleep(10 * time.Millisecond)
		return b2.h.count.Load() > 0
	})
	if st := a.tr.Stats()[2]; st.Addr != b2.addr {
		t.Errorf("stats addr %s, want %s", st.Addr, b2.addr)
	}

	a.tr.RemovePeer(2)
	if _, ok := a.tr.Stats()[2]; ok {
		t.Error("removed peer still in stats")
	}
	before := a.h.unreachableCount(2)
	time.Sleep(unreachableInterval)
	a.tr.Send([]*raftpb.Message{msgApp(1, 2, 2, nil)})
	waitFor(t, time.Second, "unreachable report for a removed peer", func() bool {
		return a.h.unreachableCount(2) > before
	})
}

// The acceptor drops messages that do not belong on the stream (wrong sender or recipient, or a MsgSnap
// without its data) and keeps the rest.
func TestRaftStreamDropsForeignMessages(t *testing.T) {
	b := startNode(t, 2, "", nil)
	c, br := rawStream(t, b.addr, kindRaft, Hello{FromID: 7, ToID: 2})
	defer c.Close()
	if err := readStatus(br); err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(c)
	for _, m := range []*raftpb.Message{
		msgApp(8, 2, 1, nil), // claims another sender
		msgApp(7, 3, 2, nil), // for another node
		msgSnap(7, 2, 3, nil),
		msgApp(7, 2, 4, nil), // fine
	} {
		writeFrame(bw, mustMarshal(t, m))
	}
	bw.Flush()
	waitFor(t, time.Second, "the valid message", func() bool { return b.h.count.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if ms := b.h.messages(); len(ms) != 1 || ms[0].GetIndex() != 4 {
		t.Fatalf("delivered %v", ms)
	}
}

// rawStream dials addr and sends the kind byte and a hello, for tests that play a peer by hand.
func rawStream(t *testing.T, addr string, kind byte, h Hello) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := h.marshal()
	if err != nil {
		t.Fatal(err)
	}
	buf := append([]byte{kind}, binary.AppendUvarint(nil, uint64(len(hb)))...)
	if _, err := c.Write(append(buf, hb...)); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}
