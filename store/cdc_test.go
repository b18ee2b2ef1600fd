//go:build sqlite_preupdate_hook

package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/cdc"
)

// lockedBuffer is the stdout endpoint of several nodes in one process.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// indexes returns the entry indexes of every batch written, in order.
func (l *lockedBuffer) indexes(t *testing.T) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint64
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var batch struct {
			NodeID  string `json:"node_id"`
			Payload []struct {
				Index uint64 `json:"index"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &batch); err != nil {
			t.Fatalf("a batch on stdout is not JSON: %v: %s", err, sc.Bytes())
		}
		for _, p := range batch.Payload {
			out = append(out, p.Index)
		}
	}
	return out
}

// CDC across a change of leader, in one process (the race detector watches the service, the queue and
// the high watermark calls): every write's entry is delivered, the followers' queues are pruned by the
// leader's high watermark, and the pull feed serves a follower's queue and says when it was pruned.
func TestMemCDC(t *testing.T) {
	out := &lockedBuffer{}
	c := newMemCluster(t, 3, func(cfg *Config) {
		cc, err := cdc.Parse([]byte(`{"endpoint": "stdout", "max_batch_delay": "20ms", "high_watermark_interval": "50ms", "pull_retention": "1h"}`), "test")
		if err != nil {
			t.Fatal(err)
		}
		cfg.CDC, cfg.CDCOut = cc, out
	})
	l := c.leader()
	l.mustExec("CREATE TABLE t (x)")
	var want []uint64
	for i := 0; i < 20; i++ {
		want = append(want, l.mustExec("INSERT INTO t VALUES (1)").RaftIndex)
	}
	old := l
	c.net.Partition(addrs(old), addrs(c.others(old)...))
	next := c.leader(c.others(old)...)
	for i := 0; i < 20; i++ {
		want = append(want, next.mustExec("INSERT INTO t VALUES (2)").RaftIndex)
	}
	c.net.Heal()
	waitFor(t, "every entry on stdout", 15*time.Second, func() bool {
		got := map[uint64]bool{}
		for _, i := range out.indexes(t) {
			got[i] = true
		}
		for _, i := range want {
			if !got[i] {
				return false
			}
		}
		return true
	})
	last := want[len(want)-1]
	waitFor(t, "the high watermark on every node", 10*time.Second, func() bool {
		for _, n := range c.running() {
			if n.s.CDC().HighWatermark < last {
				return false
			}
		}
		return true
	})
	// The pull feed on a follower: groups kept for pull_retention, in order, resumable from "next".
	f := c.others(next)[0]
	// A follower may hear the high watermark before it applies the entries under it.
	waitFor(t, f.name+" to queue the last entry", 10*time.Second, func() bool { return f.s.CDC().Queue.Last >= last })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := f.s.PullChanges(ctx, want[len(want)-3], 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Payload []struct{ Index uint64 } `json:"payload"`
		Next    uint64                   `json:"next"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Payload) != 2 || resp.Next != last {
		t.Fatalf("pull after %d: %s (%v)", want[len(want)-3], body, err)
	}
	// Waiting: a pull after the last entry returns once a write arrives.
	done := make(chan []byte, 1)
	go func() {
		b, _ := f.s.PullChanges(ctx, last, 10, 3*time.Second)
		done <- b
	}()
	time.Sleep(100 * time.Millisecond)
	idx := next.mustExec("INSERT INTO t VALUES (3)").RaftIndex
	select {
	case b := <-done:
		if !strings.Contains(string(b), `"index":`) || !bytes.Contains(b, []byte(`"next":`)) {
			t.Fatalf("the waiting pull got %s (entry %d)", b, idx)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting pull did not return")
	}
	// Pruned groups are gone, and the answer says so.
	if _, err := f.s.cdcPrune(last); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.PullChanges(ctx, 0, 10, 0); !errors.Is(err, ErrChangesGone) {
		t.Fatalf("pull from 0 after pruning: %v", err)
	}
}

// cdcPrune prunes this node's queue through index, whatever its age (for tests).
func (s *Store) cdcPrune(index uint64) (int64, error) {
	return cdcQueue{s.db}.Prune(index, 1<<62)
}
