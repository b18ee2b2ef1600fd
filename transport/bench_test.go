package transport

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkSendRaft measures one-way throughput of small MsgApp messages (one 64-byte entry each) from
// one transport to another over loopback, including marshalling, framing and unmarshalling.
func BenchmarkSendRaft(b *testing.B) {
	const window = 32768 // messages in flight; stays under the queue so nothing is dropped
	hb := &fakeHandler{countOnly: true}
	rx := startNode(b, 2, "", hb)
	tx := startNode(b, 1, "", nil, withConfig(func(c *Config) { c.QueueSize = 2 * window }))
	connect(tx, rx)
	msgs := make([]*raftpb.Message, 256)
	for i := range msgs {
		msgs[i] = msgApp(1, 2, uint64(i), bytes.Repeat([]byte{'x'}, 64))
	}
	// Warm up the connection outside the timed region.
	tx.tr.Send(msgs[:1])
	waitFor(b, 5*time.Second, "warm-up", func() bool { return hb.count.Load() == 1 })
	hb.count.Store(0)

	b.ResetTimer()
	sent := 0
	for sent < b.N {
		for int64(sent)-hb.count.Load() > window-int64(len(msgs)) {
			time.Sleep(20 * time.Microsecond)
		}
		n := min(len(msgs), b.N-sent)
		tx.tr.Send(msgs[:n])
		sent += n
	}
	for hb.count.Load() < int64(b.N) {
		if d := tx.tr.Stats()[2].Dropped; d > 0 {
			b.Fatalf("%d messages dropped", d)
		}
		time.Sleep(20 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRPC measures the round-trip latency of a 100-byte call over loopback on a pooled connection.
func BenchmarkRPC(b *testing.B) {
	srv := startNode(b, 2, "", nil)
	cli := startNode(b, 1, "", nil)
	req := bytes.Repeat([]byte{'r'}, 100)
	ctx := context.Background()
	if _, err := cli.tr.Call(ctx, srv.addr, 1, req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := cli.tr.Call(ctx, srv.addr, 1, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRPCWithDeadline is BenchmarkRPC with a ctx deadline, the usual case (sets conn deadlines).
func BenchmarkRPCWithDeadline(b *testing.B) {
	srv := startNode(b, 2, "", nil)
	cli := startNode(b, 1, "", nil)
	req := bytes.Repeat([]byte{'r'}, 100)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for b.Loop() {
		if _, err := cli.tr.Call(ctx, srv.addr, 1, req); err != nil {
			b.Fatal(err)
		}
	}
}
