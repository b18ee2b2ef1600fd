package cdc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memQueue is an in-memory Queue: a stand-in for the database's change queue (db's own tests cover that),
// with the same pruning rule: the groups at or below the highest index that is at or below through and
// older than keepSinceMs are deleted, Pruned remembers the highest index deleted, and Delivered the
// highest through other than math.MaxUint64 (pruning by age alone).
type memQueue struct {
	mu        sync.Mutex
	groups    []Group
	pruned    uint64
	delivered uint64
	readErr   error
	statsErr  error
}

// groupJSON is the payload entry of the group at index i.
func groupJSON(i uint64) []byte {
	return fmt.Appendf(nil, `{"index":%d,"events":[{"op":"INSERT","table":"t","new_row_id":%d,"after":{"id":%d}}]}`, i, i, i)
}

// add queues groups, committed at tsMs (unix milliseconds), at increasing indexes.
func (q *memQueue) add(tsMs int64, idxs ...uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, i := range idxs {
		if n := len(q.groups); n > 0 && q.groups[n-1].Index >= i {
			panic("memQueue: indexes must increase")
		}
		q.groups = append(q.groups, Group{Index: i, TimestampMs: tsMs, JSON: groupJSON(i)})
	}
}

func (q *memQueue) addNow(idxs ...uint64) { q.add(time.Now().UnixMilli(), idxs...) }

func (q *memQueue) Read(after uint64, limit int) ([]Group, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.readErr != nil {
		return nil, q.readErr
	}
	var out []Group
	for _, g := range q.groups {
		if limit >= 0 && len(out) == limit {
			break
		}
		if g.Index > after {
			out = append(out, g)
		}
	}
	return out, nil
}

func (q *memQueue) Prune(through uint64, keepSinceMs int64) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if through != math.MaxUint64 {
		q.delivered = max(q.delivered, through)
	}
	var top uint64
	for _, g := range q.groups {
		if g.Index <= through && g.TimestampMs < keepSinceMs {
			top = max(top, g.Index)
		}
	}
	if top == 0 {
		return 0, nil
	}
	kept := q.groups[:0:0]
	for _, g := range q.groups {
		if g.Index > top {
			kept = append(kept, g)
		}
	}
	n := int64(len(q.groups) - len(kept))
	q.groups = kept
	q.pruned = max(q.pruned, top)
	return n, nil
}

func (q *memQueue) Stats() (QueueStats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.statsErr != nil {
		return QueueStats{}, q.statsErr
	}
	st := QueueStats{Length: int64(len(q.groups)), Pruned: q.pruned, Delivered: q.delivered}
	if n := len(q.groups); n > 0 {
		st.First, st.Last = q.groups[0].Index, q.groups[n-1].Index
	}
	return st, nil
}

func (q *memQueue) indexes() []uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := []uint64{}
	for _, g := range q.groups {
		out = append(out, g.Index)
	}
	return out
}

func (q *memQueue) prunedThrough() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pruned
}

func (q *memQueue) deliveredThrough() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.delivered
}

func (q *memQueue) setReadErr(err error) {
	q.mu.Lock()
	q.readErr = err
	q.mu.Unlock()
}

// stubCluster is the node as the service sees it: a leadership flag, and the high watermarks broadcast.
type stubCluster struct {
	leader     atomic.Bool
	mu         sync.Mutex
	hwms       []uint64
	noDeadline bool // a broadcast came without a deadline
}

func newCluster(leader bool) *stubCluster {
	c := &stubCluster{}
	c.leader.Store(leader)
	return c
}

func (c *stubCluster) IsLeader() bool { return c.leader.Load() }

func (c *stubCluster) BroadcastHighWatermark(ctx context.Context, hwm uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hwms = append(c.hwms, hwm)
	if _, ok := ctx.Deadline(); !ok {
		c.noDeadline = true
	}
}

func (c *stubCluster) broadcasts() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint64(nil), c.hwms...)
}

// post is one request the endpoint received.
type post struct {
	body        []byte
	at          time.Time
	method      string
	contentType string
	user, pass  string
	auth        bool
	status      int
}

// endpoint is a real HTTP server that records what it is sent and answers as told.
type endpoint struct {
	srv    *httptest.Server
	mu     sync.Mutex
	posts  []post
	status func(n int) int // the status for the nth request (from 1); nil: 200
}

func newEndpoint(t *testing.T, status func(n int) int) *endpoint {
	e := &endpoint{status: status}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p := post{body: body, at: time.Now(), method: r.Method, contentType: r.Header.Get("Content-Type")}
		p.user, p.pass, p.auth = r.BasicAuth()
		e.mu.Lock()
		p.status = http.StatusOK
		if e.status != nil {
			p.status = e.status(len(e.posts) + 1)
		}
		e.posts = append(e.posts, p)
		e.mu.Unlock()
		w.WriteHeader(p.status)
		io.WriteString(w, "a body the service ignores")
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) setStatus(f func(n int) int) {
	e.mu.Lock()
	e.status = f
	e.mu.Unlock()
}

func (e *endpoint) got() []post {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]post(nil), e.posts...)
}

func always(code int) func(int) int { return func(int) int { return code } }

// failFirst fails the first n requests with 503, then accepts.
func failFirst(n int) func(int) int {
	return func(i int) int {
		if i <= n {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
}

// syncBuffer is a writer the test can read while the service writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout is closed") }

// testConfig has small durations, so that tests run quickly.
func testConfig(endpoint string) *Config {
	return &Config{Endpoint: endpoint, MaxBatchSize: 3, MaxBatchDelay: 30 * time.Millisecond,
		HighWatermarkInterval: 50 * time.Millisecond, TransmitTimeout: 5 * time.Second,
		TransmitMinBackoff: 20 * time.Millisecond, TransmitMaxBackoff: 100 * time.Millisecond}
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func newService(t *testing.T, cfg *Config, q Queue, cl Cluster, out io.Writer) *Service {
	t.Helper()
	s, err := New(cfg, "node1", q, cl, out, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func startService(t *testing.T, cfg *Config, q Queue, cl Cluster, out io.Writer) *Service {
	t.Helper()
	s := newService(t, cfg, q, cl, out)
	s.Start()
	return s
}

// waitFor polls cond until it holds, failing the test after a long while (these machines are slow).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// envelope is the body a batch of these groups must have.
func envelope(serviceID, nodeID string, idxs ...uint64) string {
	var b strings.Builder
	b.WriteString("{")
	if serviceID != "" {
		fmt.Fprintf(&b, `"service_id":%s,`, jsonString(serviceID))
	}
	fmt.Fprintf(&b, `"node_id":%s,"payload":[`, jsonString(nodeID))
	for i, idx := range idxs {
		if i > 0 {
			b.WriteString(",")
		}
		b.Write(groupJSON(idx))
	}
	b.WriteString("]}")
	return b.String()
}

// payloadIndexes decodes a body and returns its payload's indexes.
func payloadIndexes(t *testing.T, body []byte) []uint64 {
	t.Helper()
	var env struct {
		Payload []struct {
			Index uint64 `json:"index"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	out := []uint64{}
	for _, p := range env.Payload {
		out = append(out, p.Index)
	}
	return out
}

func TestBatchesInIndexOrder(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	q.addNow(2, 3, 5, 8, 9, 10, 12) // indexes are sparse: entries that changed nothing have no group
	cfg := testConfig(ep.srv.URL + "/hook")
	cfg.ServiceID = "svc-1"
	s := startService(t, cfg, q, newCluster(true), nil)
	waitFor(t, "the high watermark to reach 12", func() bool { return s.HighWatermark() == 12 })

	want := []string{envelope("svc-1", "node1", 2, 3, 5), envelope("svc-1", "node1", 8, 9, 10),
		envelope("svc-1", "node1", 12)}
	posts := ep.got()
	if len(posts) != len(want) {
		t.Fatalf("%d POSTs, want %d", len(posts), len(want))
	}
	var bytesSent int64
	for i, p := range posts {
		if string(p.body) != want[i] {
			t.Errorf("POST %d:\n got %s\nwant %s", i+1, p.body, want[i])
		}
		if !json.Valid(p.body) {
			t.Errorf("POST %d is not JSON", i+1)
		}
		if p.method != http.MethodPost || p.contentType != "application/json" {
			t.Errorf("POST %d: method %s, Content-Type %q", i+1, p.method, p.contentType)
		}
		bytesSent += int64(len(p.body))
	}
	st := s.Counters()
	if st.BatchesOK.Load() != 3 || st.GroupsRead.Load() != 7 || st.AttemptsFailed.Load() != 0 ||
		st.Retries.Load() != 0 || st.Dropped.Load() != 0 || st.BytesSent.Load() != bytesSent || st.Reads.Load() < 3 {
		t.Errorf("counters: ok %d, groups %d, failed %d, retries %d, dropped %d, bytes %d (want %d), reads %d",
			st.BatchesOK.Load(), st.GroupsRead.Load(), st.AttemptsFailed.Load(), st.Retries.Load(),
			st.Dropped.Load(), st.BytesSent.Load(), bytesSent, st.Reads.Load())
	}
	// Delivered groups are pruned from the leader's queue, and the queue records how far delivery got.
	waitFor(t, "the queue to be pruned", func() bool { return len(q.indexes()) == 0 })
	if q.prunedThrough() != 12 || st.Pruned.Load() != 7 || q.deliveredThrough() != 12 {
		t.Errorf("pruned through %d, %d groups, delivered through %d; want 12, 7, 12", q.prunedThrough(),
			st.Pruned.Load(), q.deliveredThrough())
	}
	if msg, when := s.LastError(); msg != "" || !when.IsZero() {
		t.Errorf("last error %q at %v, want none", msg, when)
	}
	// Nothing is sent twice.
	time.Sleep(150 * time.Millisecond)
	if n := len(ep.got()); n != 3 {
		t.Errorf("%d POSTs after delivery, want 3", n)
	}
}

func TestEnvelopeWithoutServiceID(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	q.addNow(7)
	s, err := New(testConfig(ep.srv.URL), `node "A"`, q, newCluster(true), nil, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Stop()
	waitFor(t, "a POST", func() bool { return len(ep.got()) == 1 })
	want := `{"node_id":"node \"A\"","payload":[` + string(groupJSON(7)) + `]}`
	if got := string(ep.got()[0].body); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestManyGroupsInOrder(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	cfg := testConfig(ep.srv.URL)
	cfg.MaxBatchSize = 4
	cfg.MaxBatchDelay = 10 * time.Millisecond
	s := startService(t, cfg, q, newCluster(true), nil)
	const n = 60
	go func() {
		for i := uint64(1); i <= n; i++ {
			q.addNow(i)
			s.Notify()
			if i%7 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	waitFor(t, "every group delivered", func() bool { return s.HighWatermark() == n })
	var all []uint64
	for i, p := range ep.got() {
		idx := payloadIndexes(t, p.body)
		if len(idx) == 0 || len(idx) > cfg.MaxBatchSize {
			t.Errorf("POST %d holds %d groups (max %d)", i+1, len(idx), cfg.MaxBatchSize)
		}
		all = append(all, idx...)
	}
	for i, idx := range all {
		if idx != uint64(i+1) {
			t.Fatalf("delivered indexes %v: not 1..%d in order", all, n)
		}
	}
	if len(all) != n {
		t.Fatalf("delivered %d groups, want %d", len(all), n)
	}
	if got := s.Counters().GroupsRead.Load(); got != n {
		t.Errorf("groups read %d, want %d", got, n)
	}
}

func TestPartialBatchWaitsMaxBatchDelay(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	cfg := testConfig(ep.srv.URL)
	cfg.MaxBatchDelay = 150 * time.Millisecond
	s := startService(t, cfg, q, newCluster(true), nil)
	time.Sleep(20 * time.Millisecond)
	t0 := time.Now()
	q.addNow(1)
	s.Notify()
	waitFor(t, "the partial batch", func() bool { return len(ep.got()) == 1 })
	p := ep.got()[0]
	if gap := p.at.Sub(t0); gap < 140*time.Millisecond {
		t.Errorf("a partial batch went after %s, before max_batch_delay (150ms)", gap)
	}
	if got := payloadIndexes(t, p.body); !reflect.DeepEqual(got, []uint64{1}) {
		t.Errorf("payload %v", got)
	}
}

// Groups queued while a partial batch waits go in that batch.
func TestGroupsArrivingDuringDelayJoinTheBatch(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	cfg := testConfig(ep.srv.URL)
	cfg.MaxBatchDelay = 400 * time.Millisecond
	s := startService(t, cfg, q, newCluster(true), nil)
	q.addNow(1)
	s.Notify()
	time.Sleep(30 * time.Millisecond)
	q.addNow(2, 3)
	s.Notify()
	waitFor(t, "the batch", func() bool { return len(ep.got()) == 1 })
	if got := payloadIndexes(t, ep.got()[0].body); !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Errorf("first batch %v, want [1 2 3]", got)
	}
}

// Only 200 and 202 are success; other 2xx codes fail like any other.
func TestSuccessStatuses(t *testing.T) {
	for _, code := range []int{200, 202, 201, 204, 206, 400, 404, 500, 503} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			ep := newEndpoint(t, always(code))
			q := &memQueue{}
			q.addNow(1)
			cfg := testConfig(ep.srv.URL)
			cfg.TransmitMaxRetries = 1
			s := startService(t, cfg, q, newCluster(true), nil)
			st := s.Counters()
			waitFor(t, "the batch to succeed or be dropped", func() bool { return st.BatchesOK.Load()+st.Dropped.Load() == 1 })
			msg, when := s.LastError()
			if code == 200 || code == 202 {
				if st.BatchesOK.Load() != 1 || st.AttemptsFailed.Load() != 0 || msg != "" {
					t.Errorf("%d: ok %d, failed %d, last error %q", code, st.BatchesOK.Load(), st.AttemptsFailed.Load(), msg)
				}
				return
			}
			if st.Dropped.Load() != 1 || st.AttemptsFailed.Load() != 1 || st.BatchesOK.Load() != 0 {
				t.Errorf("%d: dropped %d, failed %d, ok %d", code, st.Dropped.Load(), st.AttemptsFailed.Load(), st.BatchesOK.Load())
			}
			if !strings.Contains(msg, fmt.Sprintf("status %d", code)) || when.IsZero() {
				t.Errorf("%d: last error %q at %v", code, msg, when)
			}
			if n := len(ep.got()); n != 1 {
				t.Errorf("%d: %d POSTs, want 1", code, n)
			}
		})
	}
}

// gaps are the times between consecutive POSTs.
func gaps(posts []post) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(posts); i++ {
		out = append(out, posts[i].at.Sub(posts[i-1].at))
	}
	return out
}

func TestRetryLinear(t *testing.T) {
	ep := newEndpoint(t, failFirst(4))
	q := &memQueue{}
	q.addNow(1)
	cfg := testConfig(ep.srv.URL)
	cfg.MaxBatchSize = 1
	cfg.TransmitRetryPolicy = Linear
	cfg.TransmitMinBackoff = 30 * time.Millisecond
	cfg.TransmitMaxBackoff = 5 * time.Second
	s := startService(t, cfg, q, newCluster(true), nil)
	st := s.Counters()
	waitFor(t, "delivery", func() bool { return st.BatchesOK.Load() == 1 })
	posts := ep.got()
	if len(posts) != 5 {
		t.Fatalf("%d POSTs, want 5 (4 failures, then success)", len(posts))
	}
	var total time.Duration
	for i, g := range gaps(posts) {
		if g < 25*time.Millisecond {
			t.Errorf("wait %d was %s, want at least transmit_min_backoff (30ms)", i+1, g)
		}
		total += g
	}
	// Linear waits add to 120ms; doubling would have waited 60+120+240+480ms.
	if total >= 800*time.Millisecond {
		t.Errorf("the waits add to %s: they grow, but the policy is linear", total)
	}
	for i, p := range posts {
		if !bytes.Equal(p.body, posts[0].body) {
			t.Errorf("POST %d differs from the first: a retry resends the same batch", i+1)
		}
	}
	if st.AttemptsFailed.Load() != 4 || st.Retries.Load() != 4 || st.Dropped.Load() != 0 ||
		st.BytesSent.Load() != 5*int64(len(posts[0].body)) {
		t.Errorf("failed %d, retries %d, dropped %d, bytes %d", st.AttemptsFailed.Load(), st.Retries.Load(),
			st.Dropped.Load(), st.BytesSent.Load())
	}
	if s.HighWatermark() != 1 {
		t.Errorf("high watermark %d, want 1", s.HighWatermark())
	}
	// The last error stays after a success: it is the last failure.
	if msg, when := s.LastError(); !strings.Contains(msg, "status 503") || when.IsZero() {
		t.Errorf("last error %q at %v", msg, when)
	}
}

func TestRetryExponential(t *testing.T) {
	ep := newEndpoint(t, failFirst(6))
	q := &memQueue{}
	q.addNow(1)
	cfg := testConfig(ep.srv.URL)
	cfg.MaxBatchSize = 1
	cfg.TransmitRetryPolicy = Exponential
	cfg.TransmitMinBackoff = 15 * time.Millisecond
	cfg.TransmitMaxBackoff = 60 * time.Millisecond
	s := startService(t, cfg, q, newCluster(true), nil)
	waitFor(t, "delivery", func() bool { return s.Counters().BatchesOK.Load() == 1 })
	posts := ep.got()
	if len(posts) != 7 {
		t.Fatalf("%d POSTs, want 7 (6 failures, then success)", len(posts))
	}
	// Doubled before every wait, capped: 30, 60, 60, 60, 60, 60ms. The first retry waits twice the
	// minimum.
	want := []time.Duration{30, 60, 60, 60, 60, 60}
	var total time.Duration
	for i, g := range gaps(posts) {
		if min := want[i]*time.Millisecond - 5*time.Millisecond; g < min {
			t.Errorf("wait %d was %s, want at least %s", i+1, g, want[i]*time.Millisecond)
		}
		total += g
	}
	// Capped, the waits add to 330ms; uncapped they would be 30+60+...+960 = 1890ms.
	if total >= 1500*time.Millisecond {
		t.Errorf("the waits add to %s: transmit_max_backoff (60ms) does not cap them", total)
	}
	if got := s.Counters().Retries.Load(); got != 6 {
		t.Errorf("retries %d, want 6", got)
	}
}

func TestRetryForeverWithoutMaxRetries(t *testing.T) {
	ep := newEndpoint(t, always(http.StatusServiceUnavailable))
	q := &memQueue{}
	q.addNow(1)
	cfg := testConfig(ep.srv.URL)
	cfg.MaxBatchSize = 1
	cfg.TransmitMinBackoff = 5 * time.Millisecond
	cfg.TransmitMaxBackoff = 5 * time.Millisecond
	s := startService(t, cfg, q, newCluster(true), nil)
	waitFor(t, "10 attempts", func() bool { return len(ep.got()) >= 10 })
	st := s.Counters()
	if st.Dropped.Load() != 0 || s.HighWatermark() != 0 || !reflect.DeepEqual(q.indexes(), []uint64{1}) {
		t.Errorf("dropped %d, high watermark %d, queue %v: with no transmit_max_retries a batch is never given up",
			st.Dropped.Load(), s.HighWatermark(), q.indexes())
	}
}

func TestMaxRetriesDropsBatch(t *testing.T) {
	ep := newEndpoint(t, failFirst(3))
	q := &memQueue{}
	q.addNow(1, 2, 3, 4)
	cfg := testConfig(ep.srv.URL)
	cfg.MaxBatchSize = 2
	cfg.TransmitMaxRetries = 3
	s := startService(t, cfg, q, newCluster(true), nil)
	waitFor(t, "the second batch", func() bool { return s.HighWatermark() == 4 })
	time.Sleep(100 * time.Millisecond) // nothing more comes
	posts := ep.got()
	if len(posts) != 4 {
		t.Fatalf("%d POSTs, want 3 of the first batch and 1 of the second", len(posts))
	}
	first, second := envelope("", "node1", 1, 2), envelope("", "node1", 3, 4)
	for i := range 3 {
		if string(posts[i].body) != first {
			t.Errorf("POST %d: %s, want the first batch", i+1, posts[i].body)
		}
	}
	if string(posts[3].body) != second {
		t.Errorf("POST 4: %s, want the second batch", posts[3].body)
	}
	st := s.Counters()
	if st.Dropped.Load() != 1 || st.AttemptsFailed.Load() != 3 || st.Retries.Load() != 2 || st.BatchesOK.Load() != 1 ||
		st.GroupsRead.Load() != 4 || st.BytesSent.Load() != int64(3*len(first)+len(second)) {
		t.Errorf("dropped %d, failed %d, retries %d, ok %d, groups %d, bytes %d", st.Dropped.Load(),
			st.AttemptsFailed.Load(), st.Retries.Load(), st.BatchesOK.Load(), st.GroupsRead.Load(), st.BytesSent.Load())
	}
	if msg, _ := s.LastError(); !strings.Contains(msg, "status 503") {
		t.Errorf("last error %q", msg)
	}
	waitFor(t, "the queue to be pruned", func() bool { return len(q.indexes()) == 0 })
}

func TestNotLeaderSendsNothing(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	q.addNow(1, 2, 3, 4)
	cl := newCluster(false)
	s := startService(t, testConfig(ep.srv.URL), q, cl, nil)
	s.Notify()
	time.Sleep(250 * time.Millisecond) // several polls and high watermark intervals
	st := s.Counters()
	if n := len(ep.got()); n != 0 || st.Reads.Load() != 0 || st.GroupsRead.Load() != 0 || len(cl.broadcasts()) != 0 {
		t.Fatalf("a follower sent: %d POSTs, %d reads, %d groups, broadcasts %v", n, st.Reads.Load(),
			st.GroupsRead.Load(), cl.broadcasts())
	}
	if s.HighWatermark() != 0 || len(q.indexes()) != 4 {
		t.Fatalf("high watermark %d, queue %v", s.HighWatermark(), q.indexes())
	}
	// Once it leads, it sends everything queued, without another Notify.
	cl.leader.Store(true)
	waitFor(t, "delivery once leading", func() bool { return s.HighWatermark() == 4 })
	if posts := ep.got(); len(posts) != 2 || string(posts[0].body) != envelope("", "node1", 1, 2, 3) {
		t.Errorf("%d POSTs", len(posts))
	}
}

func TestLeadershipLostDuringRetryWait(t *testing.T) {
	ep := newEndpoint(t, always(http.StatusServiceUnavailable))
	q := &memQueue{}
	q.addNow(1)
	cl := newCluster(true)
	cfg := testConfig(ep.srv.URL)
	cfg.MaxBatchSize = 1
	cfg.TransmitMinBackoff = 300 * time.Millisecond
	cfg.TransmitMaxBackoff = 300 * time.Millisecond
	s := startService(t, cfg, q, cl, nil)
	waitFor(t, "the first attempt", func() bool { return len(ep.got()) == 1 })
	cl.leader.Store(false)
	time.Sleep(800 * time.Millisecond) // more than two waits
	st := s.Counters()
	if n := len(ep.got()); n != 1 || st.Retries.Load() != 0 {
		t.Fatalf("%d POSTs, %d retries after leadership was lost during the wait; want 1, 0", n, st.Retries.Load())
	}
	if st.Dropped.Load() != 0 || s.HighWatermark() != 0 || !reflect.DeepEqual(q.indexes(), []uint64{1}) {
		t.Fatalf("dropped %d, high watermark %d, queue %v: the batch is left for the next leader",
			st.Dropped.Load(), s.HighWatermark(), q.indexes())
	}
	// Leading again, it sends the batch again.
	ep.setStatus(always(http.StatusAccepted))
	cl.leader.Store(true)
	waitFor(t, "delivery", func() bool { return s.HighWatermark() == 1 })
	posts := ep.got()
	if !bytes.Equal(posts[len(posts)-1].body, posts[0].body) {
		t.Errorf("the batch sent after leading again differs")
	}
}

func TestStopDuringRetryWait(t *testing.T) {
	ep := newEndpoint(t, always(http.StatusServiceUnavailable))
	q := &memQueue{}
	q.addNow(1)
	cfg := testConfig(ep.srv.URL)
	cfg.TransmitMinBackoff = 20 * time.Second
	cfg.TransmitMaxBackoff = 20 * time.Second
	cl := newCluster(true)
	s := startService(t, cfg, q, cl, nil)
	waitFor(t, "the first attempt", func() bool { return len(ep.got()) == 1 })
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		cl.leader.Store(false) // so that the loop ends after all
		t.Fatal("Stop waited for the retry wait")
	}
	s.Stop() // again: no effect
}

func TestStopEndsPOSTUnderWay(t *testing.T) {
	var arrived atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	q := &memQueue{}
	q.addNow(1)
	cfg := testConfig(srv.URL)
	cfg.TransmitTimeout = time.Minute
	s := startService(t, cfg, q, newCluster(true), nil)
	waitFor(t, "the POST", func() bool { return arrived.Load() == 1 })
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waits for a POST under way")
	}
	if s.HighWatermark() != 0 {
		t.Errorf("high watermark %d after an unfinished POST", s.HighWatermark())
	}
}

func TestTransmitTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	q := &memQueue{}
	q.addNow(1)
	cfg := testConfig(srv.URL)
	cfg.TransmitTimeout = 50 * time.Millisecond
	cfg.TransmitMaxRetries = 1
	s := startService(t, cfg, q, newCluster(true), nil)
	waitFor(t, "the batch to be dropped", func() bool { return s.Counters().Dropped.Load() == 1 })
	if msg, _ := s.LastError(); !strings.Contains(msg, "POST ") {
		t.Errorf("last error %q", msg)
	}
}

func TestURLPassword(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	q.addNow(1)
	cfg := testConfig(strings.Replace(ep.srv.URL, "http://", "http://cdc:s3cret@", 1))
	s := startService(t, cfg, q, newCluster(true), nil)
	waitFor(t, "delivery", func() bool { return s.HighWatermark() == 1 })
	if p := ep.got()[0]; !p.auth || p.user != "cdc" || p.pass != "s3cret" {
		t.Errorf("basic auth %v %q %q, want the URL's user and password", p.auth, p.user, p.pass)
	}

	// A transport error names the endpoint without its password.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	q2 := &memQueue{}
	q2.addNow(1)
	cfg2 := testConfig(strings.Replace(dead.URL, "http://", "http://cdc:s3cret@", 1))
	cfg2.TransmitMaxRetries = 1
	s2 := startService(t, cfg2, q2, newCluster(true), nil)
	waitFor(t, "the batch to be dropped", func() bool { return s2.Counters().Dropped.Load() == 1 })
	msg, _ := s2.LastError()
	if strings.Contains(msg, "s3cret") || !strings.Contains(msg, "cdc:xxxxx@") || !strings.HasPrefix(msg, "POST ") {
		t.Errorf("last error %q", msg)
	}
}

func TestReadErrorIsReported(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	q.addNow(1)
	q.setReadErr(errors.New("disk on fire"))
	s := startService(t, testConfig(ep.srv.URL), q, newCluster(true), nil)
	waitFor(t, "the error", func() bool { msg, _ := s.LastError(); return msg != "" })
	if msg, _ := s.LastError(); !strings.Contains(msg, "read the change queue") || !strings.Contains(msg, "disk on fire") {
		t.Errorf("last error %q", msg)
	}
	if len(ep.got()) != 0 || s.Counters().Reads.Load() == 0 {
		t.Errorf("%d POSTs, %d reads", len(ep.got()), s.Counters().Reads.Load())
	}
	// It goes on once the queue reads again.
	q.setReadErr(nil)
	waitFor(t, "delivery", func() bool { return s.HighWatermark() == 1 })
}

func TestHighWatermarkBroadcast(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	cl := newCluster(true)
	cfg := testConfig(ep.srv.URL)
	cfg.HighWatermarkInterval = 30 * time.Millisecond
	s := startService(t, cfg, q, cl, nil)
	time.Sleep(150 * time.Millisecond)
	if b := cl.broadcasts(); len(b) != 0 {
		t.Fatalf("broadcasts %v while the high watermark is 0", b)
	}
	q.addNow(1, 2, 3)
	s.Notify()
	waitFor(t, "delivery", func() bool { return s.HighWatermark() == 3 })
	// Every interval, even unchanged.
	waitFor(t, "three broadcasts", func() bool { return len(cl.broadcasts()) >= 3 })
	for _, h := range cl.broadcasts() {
		if h != 3 {
			t.Fatalf("broadcasts %v, want only 3", cl.broadcasts())
		}
	}
	cl.mu.Lock()
	noDeadline := cl.noDeadline
	cl.mu.Unlock()
	if noDeadline {
		t.Error("a broadcast's context has no deadline")
	}
	// A follower does not broadcast.
	cl.leader.Store(false)
	time.Sleep(60 * time.Millisecond) // one in flight may finish
	n := len(cl.broadcasts())
	time.Sleep(200 * time.Millisecond)
	if m := len(cl.broadcasts()); m != n {
		t.Errorf("%d broadcasts after leadership was lost", m-n)
	}
}

func TestSetHighWatermark(t *testing.T) {
	q := &memQueue{}
	q.addNow(1, 2, 3, 4, 5)
	s := newService(t, testConfig("http://example.invalid"), q, newCluster(false), nil)
	st := s.Counters()
	if s.HighWatermark() != 0 {
		t.Fatalf("start %d", s.HighWatermark())
	}
	s.SetHighWatermark(3)
	if s.HighWatermark() != 3 || !reflect.DeepEqual(q.indexes(), []uint64{4, 5}) || q.prunedThrough() != 3 ||
		st.Pruned.Load() != 3 || st.HWMIgnored.Load() != 0 {
		t.Fatalf("after 3: hwm %d, queue %v, pruned %d/%d, ignored %d", s.HighWatermark(), q.indexes(),
			q.prunedThrough(), st.Pruned.Load(), st.HWMIgnored.Load())
	}
	for i, h := range []uint64{2, 3, 0} {
		s.SetHighWatermark(h)
		if s.HighWatermark() != 3 || st.HWMIgnored.Load() != int64(i+1) {
			t.Fatalf("after %d: hwm %d, ignored %d", h, s.HighWatermark(), st.HWMIgnored.Load())
		}
	}
	if !reflect.DeepEqual(q.indexes(), []uint64{4, 5}) {
		t.Fatalf("queue %v", q.indexes())
	}
	s.SetHighWatermark(9)
	if s.HighWatermark() != 9 || len(q.indexes()) != 0 || q.prunedThrough() != 5 || st.Pruned.Load() != 5 {
		t.Fatalf("after 9: hwm %d, queue %v, pruned %d/%d", s.HighWatermark(), q.indexes(), q.prunedThrough(), st.Pruned.Load())
	}

	// From many goroutines: it only ever grows, to the highest value given.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := uint64(10 + g); h < 200; h += 8 {
				s.SetHighWatermark(h)
			}
		}()
	}
	wg.Wait()
	if s.HighWatermark() != 199 {
		t.Errorf("hwm %d, want 199", s.HighWatermark())
	}
}

// A follower learns the leader's high watermark; leading later, it sends only what comes after it.
func TestNewLeaderResumesAfterHighWatermark(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	q.addNow(1, 2, 3, 4, 5, 6)
	cl := newCluster(false)
	s := startService(t, testConfig(ep.srv.URL), q, cl, nil)
	s.SetHighWatermark(4)
	if !reflect.DeepEqual(q.indexes(), []uint64{5, 6}) {
		t.Fatalf("queue %v", q.indexes())
	}
	cl.leader.Store(true)
	waitFor(t, "delivery", func() bool { return s.HighWatermark() == 6 })
	posts := ep.got()
	if len(posts) != 1 || string(posts[0].body) != envelope("", "node1", 5, 6) {
		t.Errorf("POSTs %d, first %s", len(posts), posts[0].body)
	}
}

func TestNewStartsHighWatermark(t *testing.T) {
	for _, c := range []struct {
		groups []uint64
		pruned uint64
		want   uint64
	}{
		{nil, 0, 0},
		{nil, 7, 7},
		{[]uint64{1, 2}, 0, 0},
		{[]uint64{5, 6, 8}, 0, 4},
		{[]uint64{5, 6, 8}, 2, 4},
		{[]uint64{5, 6, 8}, 4, 4},
		{[]uint64{10}, 9, 9},
		{[]uint64{10}, 12, 12}, // max(Pruned, First-1)
	} {
		q := &memQueue{pruned: c.pruned}
		q.addNow(c.groups...)
		s, err := New(testConfig("stdout"), "n", q, newCluster(false), io.Discard, quietLog)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.HighWatermark(); got != c.want {
			t.Errorf("queue %v pruned through %d: high watermark %d, want %d", c.groups, c.pruned, got, c.want)
		}
	}
	// What the queue recorded as delivered counts too: groups kept for pull_retention are not sent again.
	for _, c := range []struct {
		groups            []uint64
		pruned, delivered uint64
		want              uint64
	}{
		{[]uint64{5, 6, 8}, 0, 6, 6},
		{[]uint64{5, 6, 8}, 2, 8, 8},
		{[]uint64{5, 6, 8}, 4, 3, 4},
		{nil, 3, 9, 9},
	} {
		q := &memQueue{pruned: c.pruned, delivered: c.delivered}
		q.addNow(c.groups...)
		s, err := New(testConfig("stdout"), "n", q, newCluster(false), io.Discard, quietLog)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.HighWatermark(); got != c.want {
			t.Errorf("queue %v pruned through %d, delivered through %d: high watermark %d, want %d", c.groups,
				c.pruned, c.delivered, got, c.want)
		}
	}
	q := &memQueue{statsErr: errors.New("no table")}
	if _, err := New(testConfig("stdout"), "n", q, newCluster(false), io.Discard, quietLog); err == nil ||
		!strings.Contains(err.Error(), "no table") {
		t.Errorf("New with a failing queue: %v", err)
	}
}

// A restarted node sends everything still queued: it counts as not delivered.
func TestRestartResendsQueued(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{pruned: 4}
	q.addNow(5, 6, 7)
	s := startService(t, testConfig(ep.srv.URL), q, newCluster(true), nil)
	waitFor(t, "delivery", func() bool { return s.HighWatermark() == 7 })
	if posts := ep.got(); len(posts) != 1 || string(posts[0].body) != envelope("", "node1", 5, 6, 7) {
		t.Errorf("%d POSTs", len(posts))
	}
}

func TestStdout(t *testing.T) {
	var out syncBuffer
	q := &memQueue{}
	q.addNow(1, 2, 3, 4)
	cfg := testConfig("stdout")
	cfg.ServiceID = "svc"
	s := startService(t, cfg, q, newCluster(true), &out)
	waitFor(t, "delivery", func() bool { return s.HighWatermark() == 4 })
	want := envelope("svc", "node1", 1, 2, 3) + "\n" + envelope("svc", "node1", 4) + "\n"
	if got := out.String(); got != want {
		t.Errorf("stdout:\n%s\nwant\n%s", got, want)
	}
	st := s.Counters()
	if st.BatchesOK.Load() != 2 || st.BytesSent.Load() != int64(len(want)-2) {
		t.Errorf("ok %d, bytes %d", st.BatchesOK.Load(), st.BytesSent.Load())
	}
	waitFor(t, "the queue to be pruned", func() bool { return len(q.indexes()) == 0 })
}

func TestStdoutWriteFails(t *testing.T) {
	q := &memQueue{}
	q.addNow(1)
	cfg := testConfig("stdout")
	cfg.TransmitMaxRetries = 2
	s := startService(t, cfg, q, newCluster(true), failingWriter{})
	st := s.Counters()
	waitFor(t, "the batch to be dropped", func() bool { return st.Dropped.Load() == 1 })
	if st.AttemptsFailed.Load() != 2 || st.Retries.Load() != 1 || st.BatchesOK.Load() != 0 {
		t.Errorf("failed %d, retries %d, ok %d", st.AttemptsFailed.Load(), st.Retries.Load(), st.BatchesOK.Load())
	}
	if msg, _ := s.LastError(); !strings.Contains(msg, "stdout is closed") {
		t.Errorf("last error %q", msg)
	}
}

// A sending endpoint with pull_retention keeps delivered groups for the pull feed until they are old.
func TestPullRetentionWithWebhook(t *testing.T) {
	ep := newEndpoint(t, nil)
	q := &memQueue{}
	q.add(time.Now().Add(-2*time.Hour).UnixMilli(), 1, 2)
	q.addNow(3)
	cfg := testConfig(ep.srv.URL)
	cfg.PullRetention = time.Hour
	s := startService(t, cfg, q, newCluster(true), nil)
	waitFor(t, "delivery", func() bool { return s.HighWatermark() == 3 })
	waitFor(t, "the old groups to be pruned", func() bool { return q.prunedThrough() == 2 })
	time.Sleep(100 * time.Millisecond)
	if !reflect.DeepEqual(q.indexes(), []uint64{3}) {
		t.Errorf("queue %v, want [3]: delivered, but younger than pull_retention", q.indexes())
	}
	waitFor(t, "delivery to be recorded", func() bool { return q.deliveredThrough() == 3 })
	// Restarted, the node does not send group 3 again.
	s.Stop()
	ep2 := newEndpoint(t, nil)
	s2 := startService(t, testConfig(ep2.srv.URL), q, newCluster(true), nil)
	if s2.HighWatermark() != 3 {
		t.Errorf("restarted at high watermark %d, want 3", s2.HighWatermark())
	}
	time.Sleep(150 * time.Millisecond)
	if n := len(ep2.got()); n != 0 {
		t.Errorf("a restarted node sent %d batches of delivered groups", n)
	}
}

func pullConfig() *Config {
	cfg := testConfig("pull")
	cfg.PullRetention = time.Hour
	return cfg
}

func pullIndexes(groups []Group) []uint64 {
	out := []uint64{}
	for _, g := range groups {
		out = append(out, g.Index)
	}
	return out
}

func TestPullEndpointSendsNothing(t *testing.T) {
	var out syncBuffer
	q := &memQueue{}
	q.addNow(1, 2, 3, 4)
	cl := newCluster(true)
	s := startService(t, pullConfig(), q, cl, &out)
	s.Notify()
	time.Sleep(250 * time.Millisecond)
	if out.String() != "" || s.Counters().Reads.Load() != 0 || s.Counters().BytesSent.Load() != 0 ||
		len(cl.broadcasts()) != 0 || s.HighWatermark() != 0 {
		t.Errorf("the pull endpoint sent: out %q, reads %d, bytes %d, broadcasts %v, hwm %d", out.String(),
			s.Counters().Reads.Load(), s.Counters().BytesSent.Load(), cl.broadcasts(), s.HighWatermark())
	}
	if !reflect.DeepEqual(q.indexes(), []uint64{1, 2, 3, 4}) {
		t.Errorf("queue %v: nothing is old enough to prune", q.indexes())
	}
}

func TestPull(t *testing.T) {
	q := &memQueue{}
	q.addNow(1, 2, 4, 5, 7)
	s := startService(t, pullConfig(), q, newCluster(false), nil)
	ctx := context.Background()

	gs, err := s.Pull(ctx, 0, 10, 0)
	if err != nil || !reflect.DeepEqual(pullIndexes(gs), []uint64{1, 2, 4, 5, 7}) {
		t.Fatalf("after 0: %v, %v", pullIndexes(gs), err)
	}
	if !bytes.Equal(gs[2].JSON, groupJSON(4)) {
		t.Errorf("group 4: %s", gs[2].JSON)
	}
	if gs, err = s.Pull(ctx, 2, 2, 0); err != nil || !reflect.DeepEqual(pullIndexes(gs), []uint64{4, 5}) {
		t.Fatalf("after 2, limit 2: %v, %v", pullIndexes(gs), err)
	}
	if gs, err = s.Pull(ctx, 3, 10, 0); err != nil || !reflect.DeepEqual(pullIndexes(gs), []uint64{4, 5, 7}) {
		t.Fatalf("after 3: %v, %v", pullIndexes(gs), err)
	}

	// Nothing after the last: it waits out wait, then answers nothing.
	t0 := time.Now()
	gs, err = s.Pull(ctx, 7, 10, 60*time.Millisecond)
	if err != nil || len(gs) != 0 {
		t.Fatalf("after 7: %v, %v", pullIndexes(gs), err)
	}
	if d := time.Since(t0); d < 55*time.Millisecond {
		t.Errorf("returned after %s, before wait (60ms)", d)
	}
	if gs, err = s.Pull(ctx, 7, 10, 0); err != nil || len(gs) != 0 {
		t.Fatalf("after 7, no wait: %v, %v", pullIndexes(gs), err)
	}

	// A Notify wakes a waiting pull.
	go func() {
		time.Sleep(50 * time.Millisecond)
		q.addNow(9)
		s.Notify()
	}()
	gs, err = s.Pull(ctx, 7, 10, 30*time.Second)
	if err != nil || !reflect.DeepEqual(pullIndexes(gs), []uint64{9}) {
		t.Fatalf("waiting after 7: %v, %v", pullIndexes(gs), err)
	}
}

func TestPullGone(t *testing.T) {
	q := &memQueue{}
	q.addNow(1, 2, 3, 4, 5)
	s := startService(t, pullConfig(), q, newCluster(false), nil)
	if _, err := q.Prune(3, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	for _, after := range []uint64{0, 1, 2} {
		gs, err := s.Pull(context.Background(), after, 10, time.Second)
		if !errors.Is(err, ErrGone) || gs != nil {
			t.Fatalf("after %d: %v, %v; want ErrGone", after, pullIndexes(gs), err)
		}
		if !strings.Contains(err.Error(), "3") {
			t.Errorf("after %d: %q does not say where to read from", after, err)
		}
	}
	gs, err := s.Pull(context.Background(), 3, 10, 0)
	if err != nil || !reflect.DeepEqual(pullIndexes(gs), []uint64{4, 5}) {
		t.Fatalf("after 3: %v, %v", pullIndexes(gs), err)
	}
}

func TestPullContext(t *testing.T) {
	q := &memQueue{}
	s := startService(t, pullConfig(), q, newCluster(false), nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(30 * time.Millisecond)
		cancel()
	}()
	if gs, err := s.Pull(ctx, 0, 10, 30*time.Second); !errors.Is(err, context.Canceled) || gs != nil {
		t.Errorf("cancelled: %v, %v", gs, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if gs, err := s.Pull(ctx, 0, 10, 30*time.Second); !errors.Is(err, context.DeadlineExceeded) || gs != nil {
		t.Errorf("deadline: %v, %v", gs, err)
	}
}

func TestPullEndsOnStop(t *testing.T) {
	q := &memQueue{}
	s := startService(t, pullConfig(), q, newCluster(false), nil)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Pull(context.Background(), 0, 10, 30*time.Second)
		errc <- err
	}()
	time.Sleep(30 * time.Millisecond)
	s.Stop()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a pull ended by Stop reports no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop does not end a waiting pull")
	}
}

func TestPullRetentionPrunes(t *testing.T) {
	q := &memQueue{}
	q.add(time.Now().Add(-2*time.Hour).UnixMilli(), 1, 2)
	q.addNow(3)
	cfg := pullConfig()
	cfg.PullRetention = time.Minute
	cfg.HighWatermarkInterval = 20 * time.Millisecond
	cl := newCluster(true)
	s := startService(t, cfg, q, cl, nil)
	waitFor(t, "the old groups to be pruned", func() bool { return q.prunedThrough() == 2 })
	time.Sleep(100 * time.Millisecond)
	if !reflect.DeepEqual(q.indexes(), []uint64{3}) || s.Counters().Pruned.Load() != 2 {
		t.Errorf("queue %v, pruned %d", q.indexes(), s.Counters().Pruned.Load())
	}
	if len(cl.broadcasts()) != 0 {
		t.Errorf("broadcasts %v from a pull endpoint", cl.broadcasts())
	}
	if _, err := s.Pull(context.Background(), 1, 10, 0); !errors.Is(err, ErrGone) {
		t.Errorf("pull after 1: %v", err)
	}
}

func TestPullResponse(t *testing.T) {
	cfg := pullConfig()
	cfg.ServiceID = "svc"
	s := newService(t, cfg, &memQueue{}, newCluster(false), nil)
	gs := []Group{{Index: 4, JSON: groupJSON(4)}, {Index: 6, JSON: groupJSON(6)}}
	want := `{"service_id":"svc","node_id":"node1","payload":[` + string(groupJSON(4)) + "," + string(groupJSON(6)) + `],"next":6}`
	if got := string(s.PullResponse(gs, 2)); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	want = `{"service_id":"svc","node_id":"node1","payload":[],"next":9}`
	if got := string(s.PullResponse(nil, 9)); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if !json.Valid(s.PullResponse(gs, 2)) {
		t.Error("not JSON")
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	s := newService(t, pullConfig(), &memQueue{}, newCluster(false), nil)
	for range 1000 {
		s.Notify()
	}
	if s.Config().Endpoint != "pull" {
		t.Error("Config")
	}
}
