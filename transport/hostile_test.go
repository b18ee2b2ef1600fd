package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func uv(n uint64) []byte { return binary.AppendUvarint(nil, n) }

func frame(p []byte) []byte { return append(uv(uint64(len(p))), p...) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func helloBytes(t testing.TB, h Hello) []byte {
	b, err := h.marshal()
	if err != nil {
		t.Fatal(err)
	}
	return frame(b)
}

// sendRaw writes b on a fresh connection, half-closes it, and returns what the server answered before
// closing its side. The server must close within d.
func sendRaw(t *testing.T, addr string, b []byte, d time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(b) // may fail if the server already hung up: that is fine
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("server kept the connection open for %v", d)
	}
	return got
}

func TestHostileInput(t *testing.T) {
	srv := startNode(t, 2, "", nil,
		withConfig(func(c *Config) { c.MaxFrame = 1 << 20 }),
		withLimits(func(l *limits) { l.handshakeTimeout = 300 * time.Millisecond }))
	hello := helloBytes(t, Hello{FromID: 1, ToID: 2})
	snapMsg := frame(mustMarshal(t, msgSnap(1, 2, 5, nil)))
	appMsg := frame(mustMarshal(t, msgApp(1, 2, 5, nil)))

	cases := []struct {
		name      string
		in        []byte
		wantError string // expected text in an error status from the server, if it answers one
	}{
		{name: "nothing"},
		{name: "unknown kind 0", in: []byte{0}},
		{name: "unknown kind 5", in: []byte{5, 1, 2, 3}},
		{name: "unknown kind 255", in: []byte{255}},
		{name: "hello over 4 KiB", in: cat([]byte{kindRaft}, uv(5000), make([]byte, 100))},
		{name: "hello claims 2^63", in: cat([]byte{kindRaft}, uv(1<<63-1))},
		{name: "varint overflow", in: cat([]byte{kindRaft}, bytes.Repeat([]byte{0xff}, 11))},
		{name: "hello truncated", in: cat([]byte{kindRaft}, uv(40), []byte{1, 2, 3})},
		{name: "hello bad version", in: cat([]byte{kindRaft}, frame([]byte{7, 1, 0, 0, 2, 0})), wantError: "version"},
		{name: "hello empty", in: cat([]byte{kindSnapshot}, frame(nil)), wantError: "empty hello"},
		{name: "hello varint runs off", in: cat([]byte{kindRaft}, frame([]byte{1, 0x80})), wantError: "truncated"},
		{name: "hello string length lies", in: cat([]byte{kindRaft}, frame([]byte{1, 1, 0xff, 0xff, 0x03, 'a'})), wantError: "exceeds"},
		{name: "raft frame over MaxFrame", in: cat([]byte{kindRaft}, hello, uv(2<<20), make([]byte, 100))},
		{name: "raft frame claims 2^63", in: cat([]byte{kindRaft}, hello, uv(1<<63+12345))},
		{name: "raft garbage protobuf", in: cat([]byte{kindRaft}, hello, frame(bytes.Repeat([]byte{0xff}, 20)))},
		{name: "raft truncated frame", in: cat([]byte{kindRaft}, hello, uv(100), []byte{1, 2, 3, 4, 5})},
		{name: "rpc over MaxFrame", in: cat([]byte{kindRPC}, uv(2<<20), make([]byte, 100))},
		{name: "rpc claims 2^63", in: cat([]byte{kindRPC}, uv(1<<63+1))},
		{name: "rpc truncated", in: cat([]byte{kindRPC}, uv(1000), make([]byte, 10))},
		{name: "rpc empty request", in: []byte{kindRPC, 0}},
		{name: "stream rpc over MaxFrame", in: cat([]byte{kindStreamRPC}, uv(1<<62))},
		{name: "stream rpc empty request", in: []byte{kindStreamRPC, 0}},
		{name: "snapshot not a MsgSnap", in: cat([]byte{kindSnapshot}, hello, appMsg), wantError: "MsgApp"},
		{name: "snapshot garbage MsgSnap", in: cat([]byte{kindSnapshot}, hello, frame([]byte{0xff, 0xff}))},
		{name: "snapshot chunk over 1 MiB", in: cat([]byte{kindSnapshot}, hello, snapMsg, uv(2<<20), make([]byte, 10)), wantError: "limit"},
		{name: "snapshot chunk claims 2^63", in: cat([]byte{kindSnapshot}, hello, snapMsg, uv(1<<63)), wantError: "limit"},
		{name: "snapshot cut", in: cat([]byte{kindSnapshot}, hello, snapMsg, frame([]byte("abc"))), wantError: "cut"},
		{name: "snapshot bad trailer", in: cat([]byte{kindSnapshot}, hello, snapMsg, frame([]byte("abc")), []byte{0},
			make([]byte, 12)), wantError: "checksum"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := sendRaw(t, srv.addr, tc.in, 2*time.Second)
			if tc.wantError == "" {
				return
			}
			br := bufio.NewReader(bytes.NewReader(got))
			if tc.in[0] == kindRaft || tc.in[0] == kindSnapshot {
				if bytes.HasPrefix(tc.in[1:], hello) {
					if err := readStatus(br); err != nil {
						t.Fatalf("handshake status: %v", err)
					}
				}
			}
			err := readStatus(br)
			var re *RemoteError
			if !errors.As(err, &re) || !strings.Contains(re.Msg, tc.wantError) {
				t.Fatalf("want an error status containing %q, got %v (answer %q)", tc.wantError, err, got)
			}
		})
	}

	t.Run("random bytes", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		var wg sync.WaitGroup
		for i := range 100 {
			b := make([]byte, r.IntN(3000))
			for k := range b {
				b[k] = byte(r.Uint32())
			}
			if len(b) > 0 && i%2 == 0 {
				b[0] = byte(1 + i%4) // a valid kind byte followed by junk reaches deeper
			}
			wg.Go(func() { sendRaw(t, srv.addr, b, 2*time.Second) })
		}
		wg.Wait()
	})

	// The node keeps serving others.
	cli := startNode(t, 1, "", nil)
	if resp, err := cli.tr.Call(context.Background(), srv.addr, 4, []byte("still there?")); err != nil ||
		string(resp) != "\x04still there?" {
		t.Fatalf("%q %v", resp, err)
	}
	connect(cli, srv)
	cli.tr.Send([]*raftpb.Message{msgApp(1, 2, 9, []byte("hi"))})
	waitFor(t, 2*time.Second, "raft delivery after the abuse", func() bool {
		for _, m := range srv.h.messages() {
			if m.GetIndex() == 9 {
				return true
			}
		}
		return false
	})
}

// Claims of huge frames cost memory only for the bytes that actually arrive.
func TestHostileNoBigAllocation(t *testing.T) {
	srv := startNode(t, 2, "", nil) // default MaxFrame: 256 MiB
	hello := helloBytes(t, Hello{FromID: 1, ToID: 2})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 20
	for i := range n {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var in []byte
		if i%2 == 0 {
			in = cat([]byte{kindRPC}, uv(250<<20), make([]byte, 1000))
		} else {
			in = cat([]byte{kindRaft}, hello, uv(250<<20), make([]byte, 1000))
		}
		if _, err := c.Write(in); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // let the server read what there is and block for the rest
	runtime.ReadMemStats(&after)
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d connections each claiming a 250 MiB frame: %d KiB allocated", n, grew>>10)
	if grew > 32<<20 {
		t.Fatalf("allocated %d MiB for claimed but unsent frames", grew>>20)
	}
}

// Clients that connect and send nothing (or too little) are dropped after the handshake timeout, and do not
// hold up anyone else meanwhile.
func TestHostileSlowClients(t *testing.T) {
	srv := startNode(t, 2, "", nil,
		withLimits(func(l *limits) { l.handshakeTimeout = 300 * time.Millisecond }))
	hello := helloBytes(t, Hello{FromID: 1, ToID: 2})
	partials := [][]byte{nil, {kindRPC}, {kindRaft}, cat([]byte{kindRaft}, hello[:5]), cat([]byte{kindRPC}, uv(100), []byte{1})}
	var conns []net.Conn
	for _, p := range partials {
		for range 4 {
			c, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(p)
			conns = append(conns, c)
		}
	}
	cli := startNode(t, 1, "", nil)
	start := time.Now()
	if _, err := cli.tr.Call(context.Background(), srv.addr, 1, nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 200*time.Millisecond {
		t.Errorf("call took %v while slow clients were connected", took)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("slow client not dropped")
		}
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("slow clients dropped after %v, before the handshake timeout", took)
	}
}

// Beyond the connection limit, new connections are closed at once; capacity returns as others leave.
func TestConnectionLimit(t *testing.T) {
	srv := startNode(t, 2, "", nil,
		withLimits(func(l *limits) { l.maxConns = 8; l.handshakeTimeout = 5 * time.Second }))
	var idle []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond) // all eight accepted and waiting for their kind byte
	extra, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadAll(extra); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("connection over the limit was not closed")
	}
	for _, c := range idle {
		c.Close()
	}
	cli := startNode(t, 1, "", nil)
	waitFor(t, 2*time.Second, "a call once capacity returns", func() bool {
		_, err := cli.tr.Call(context.Background(), srv.addr, 1, nil)
		return err == nil
	})
}
