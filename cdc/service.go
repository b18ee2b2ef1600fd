package cdc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Group is one queued group: the row changes of the committed entry at Index, as a payload entry of the
// JSON this package sends.
type Group struct {
	Index       uint64
	TimestampMs int64
	JSON        []byte
}

// QueueStats describes the node's change queue.
type QueueStats struct {
	Length      int64
	First, Last uint64
	Pruned      uint64 // the highest index pruned: groups at or below it are gone
	Delivered   uint64 // the highest index known delivered, as Prune last recorded it
}

// Queue is the node's change queue, which the database fills as it applies entries.
type Queue interface {
	Read(after uint64, limit int) ([]Group, error)
	// Prune deletes the groups at or below through that were committed before keepSinceMs, and, unless
	// through is math.MaxUint64 (pruning by age alone), records through as delivered.
	Prune(through uint64, keepSinceMs int64) (int64, error)
	Stats() (QueueStats, error)
}

// Cluster is what the service needs of the node: whether it leads, and a way to tell the voters the high
// watermark.
type Cluster interface {
	IsLeader() bool
	BroadcastHighWatermark(ctx context.Context, hwm uint64)
}

// Service sends the queue's groups to the endpoint while this node leads, and prunes the queue.
type Service struct {
	cfg    *Config
	nodeID string
	queue  Queue
	cl     Cluster
	log    *slog.Logger
	out    io.Writer // the stdout endpoint
	client *http.Client

	hwm      atomic.Uint64
	queued   atomic.Int64  // groups queued since the start (Queued)
	notify   chan struct{} // the queue has new groups (capacity 1)
	waitMu   sync.Mutex    // guards newGroups
	newGrps  chan struct{} // closed when groups arrive: pull feed waiters
	stats    Stats
	lastErr  atomic.Pointer[errorAt]
	stopc    chan struct{}
	ctx      context.Context // cancelled by Stop: a POST under way ends with it
	cancel   context.CancelFunc
	loops    sync.WaitGroup
	stopOnce sync.Once
}

type errorAt struct {
	err  string
	when time.Time
}

// Stats are the service's counters (the /debug/vars cdc.service map).
type Stats struct {
	Reads          atomic.Int64 // reads of the queue for a batch
	GroupsRead     atomic.Int64 // groups put into batches
	BatchesOK      atomic.Int64 // batches the endpoint accepted
	AttemptsFailed atomic.Int64 // POSTs that failed
	Retries        atomic.Int64
	Dropped        atomic.Int64 // batches given up after transmit_max_retries
	BytesSent      atomic.Int64 // every attempt's body, retries included
	HWMIgnored     atomic.Int64 // high watermarks received that were not higher than this node's
	Pruned         atomic.Int64 // groups pruned
}

// New prepares the service; Start runs it.
func New(cfg *Config, nodeID string, q Queue, cl Cluster, out io.Writer, log *slog.Logger) (*Service, error) {
	s := &Service{cfg: cfg, nodeID: nodeID, queue: q, cl: cl, log: log.With("component", "cdc"), out: out,
		notify: make(chan struct{}, 1), newGrps: make(chan struct{}), stopc: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.IsWebhook() {
		tr := &http.Transport{Proxy: nil, TLSClientConfig: cfg.TLS, MaxIdleConnsPerHost: 2}
		s.client = &http.Client{Transport: tr, Timeout: cfg.TransmitTimeout}
	}
	st, err := q.Stats()
	if err != nil {
		return nil, fmt.Errorf("read the change queue: %w", err)
	}
	// What is queued above the last high watermark recorded counts as not delivered: a restarted node may
	// send it again. (Groups before the oldest queued one were pruned, or never captured here.)
	start := max(st.Pruned, st.Delivered)
	if st.First > 0 {
		start = max(start, st.First-1)
	}
	s.hwm.Store(start)
	return s, nil
}

// Start runs the sending loop, and the loop that tells the voters the high watermark and prunes. They
// are separate so that a leader sending without pause under load still tells the voters, every interval,
// how far it got.
func (s *Service) Start() {
	s.loops.Add(2)
	go s.run()
	go s.runWatermark()
}

// Stop ends the loop and waits for it.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		close(s.stopc)
		s.cancel()
	})
	s.loops.Wait()
}

// Notify says that the queue has a new group.
func (s *Service) Notify() { s.Queued(1) }

// Queued says that the queue has n new groups (the database calls it after a commit that queued some).
func (s *Service) Queued(n int) {
	s.queued.Add(int64(n))
	select {
	case s.notify <- struct{}{}:
	default:
	}
	s.waitMu.Lock()
	close(s.newGrps)
	s.newGrps = make(chan struct{})
	s.waitMu.Unlock()
}

// HighWatermark is the highest index known delivered.
func (s *Service) HighWatermark() uint64 { return s.hwm.Load() }

// SetHighWatermark adopts the leader's high watermark, if it is higher, and prunes the queue to it.
func (s *Service) SetHighWatermark(hwm uint64) {
	for {
		cur := s.hwm.Load()
		if hwm <= cur {
			s.stats.HWMIgnored.Add(1)
			return
		}
		if s.hwm.CompareAndSwap(cur, hwm) {
			break
		}
	}
	s.prune()
}

// Counters returns the service's counters.
func (s *Service) Counters() *Stats { return &s.stats }

// LastError is the last failure to deliver a batch, and when (zero if none).
func (s *Service) LastError() (string, time.Time) {
	if e := s.lastErr.Load(); e != nil {
		return e.err, e.when
	}
	return "", time.Time{}
}

// Config is the service's configuration.
func (s *Service) Config() *Config { return s.cfg }

func (s *Service) run() {
	defer s.loops.Done()
	poll := time.NewTicker(min(s.cfg.MaxBatchDelay, 250*time.Millisecond))
	defer poll.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-s.notify:
		case <-poll.C:
		}
		if s.cfg.Sends() && s.cl.IsLeader() {
			s.sendAvailable()
		}
	}
}

// runWatermark, every high_watermark_interval, has the leader tell the voters its high watermark (even
// unchanged, so that a voter that missed one, or joined late, learns it), and prunes this node's queue.
func (s *Service) runWatermark() {
	defer s.loops.Done()
	tick := time.NewTicker(s.cfg.HighWatermarkInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-tick.C:
		}
		if s.cl.IsLeader() && s.cfg.Sends() && s.hwm.Load() > 0 {
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			s.cl.BroadcastHighWatermark(ctx, s.hwm.Load())
			cancel()
		}
		s.prune()
	}
}

// sendAvailable sends batches until the queue holds nothing above the high watermark, or this node stops
// leading. A batch that is not full waits, up to max_batch_delay, until enough groups were queued to fill
// it (the database says how many each commit queued), then the queue is read again: once per batch, not
// after every entry applied meanwhile.
func (s *Service) sendAvailable() {
	waited := false
	for s.cl.IsLeader() {
		groups, err := s.queue.Read(s.hwm.Load(), s.cfg.MaxBatchSize)
		s.stats.Reads.Add(1)
		if err != nil {
			s.fail(fmt.Errorf("read the change queue: %w", err))
			return
		}
		if len(groups) == 0 {
			return
		}
		if len(groups) < s.cfg.MaxBatchSize && !waited {
			waited = true
			if !s.waitForGroups(s.cfg.MaxBatchSize - len(groups)) {
				return
			}
			continue
		}
		waited = false
		s.stats.GroupsRead.Add(int64(len(groups)))
		if !s.deliver(groups) {
			return
		}
	}
}

// deliver sends one batch, retrying as configured, and moves the high watermark past it. It returns false
// if it stopped without delivering (this node no longer leads, or it is stopping).
func (s *Service) deliver(groups []Group) bool {
	body := s.envelope(groups)
	last := groups[len(groups)-1].Index
	backoff := s.cfg.TransmitMinBackoff
	for attempt := 1; ; attempt++ {
		err := s.send(body)
		s.stats.BytesSent.Add(int64(len(body)))
		if err == nil {
			s.stats.BatchesOK.Add(1)
			s.advance(last)
			return true
		}
		s.stats.AttemptsFailed.Add(1)
		s.fail(err)
		if s.cfg.TransmitMaxRetries > 0 && attempt >= s.cfg.TransmitMaxRetries {
			// Given up: later batches go on; a later success's high watermark prunes this one.
			s.stats.Dropped.Add(1)
			s.log.Error("CDC batch given up after transmit_max_retries attempts; its changes were not delivered",
				"first_index", groups[0].Index, "last_index", last, "attempts", attempt, "err", err)
			s.advance(last)
			return true
		}
		if s.cfg.TransmitRetryPolicy == Exponential {
			if backoff > s.cfg.TransmitMaxBackoff/2 {
				backoff = s.cfg.TransmitMaxBackoff // doubling would pass it (or overflow)
			} else {
				backoff *= 2
			}
		}
		if !s.waitLeading(backoff) {
			return false // stopping, or the new leader sends it
		}
		s.stats.Retries.Add(1)
	}
}

// waitForGroups waits until n more groups were queued, or max_batch_delay passed. It reports false if
// the service is stopping.
func (s *Service) waitForGroups(n int) bool {
	base := s.queued.Load()
	deadline := time.NewTimer(s.cfg.MaxBatchDelay)
	defer deadline.Stop()
	for s.queued.Load()-base < int64(n) {
		select {
		case <-s.stopc:
			return false
		case <-deadline.C:
			return true
		case <-s.notify:
		}
	}
	return true
}

// waitLeading waits d, and reports false at once if this node stops leading (the new leader sends what
// this one was retrying) or the service stops.
func (s *Service) waitLeading(d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	check := time.NewTicker(50 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case <-s.stopc:
			return false
		case <-deadline.C:
			return s.cl.IsLeader()
		case <-check.C:
			if !s.cl.IsLeader() {
				return false
			}
		}
	}
}

// advance moves the high watermark to idx (it only grows). The leader prunes its own queue with the
// others, every high_watermark_interval: a prune is a write transaction, too dear for every batch.
func (s *Service) advance(idx uint64) {
	for {
		cur := s.hwm.Load()
		if idx <= cur || s.hwm.CompareAndSwap(cur, idx) {
			return
		}
	}
}

// prune deletes what is delivered (and, for the pull feed, older than pull_retention). Without a sender,
// only age prunes.
func (s *Service) prune() {
	through := s.hwm.Load()
	if !s.cfg.Sends() {
		through = math.MaxUint64
	}
	keepSince := int64(math.MaxInt64)
	if s.cfg.PullRetention > 0 {
		keepSince = time.Now().Add(-s.cfg.PullRetention).UnixMilli()
	}
	n, err := s.queue.Prune(through, keepSince)
	if err != nil {
		s.log.Warn("cannot prune the change queue", "err", err)
		return
	}
	s.stats.Pruned.Add(n)
}

func (s *Service) fail(err error) {
	s.lastErr.Store(&errorAt{err: err.Error(), when: time.Now()})
	s.log.Warn("CDC delivery failed", "err", err)
}

// envelope is the body of one POST: rqlite's envelope around the groups' payload entries.
func (s *Service) envelope(groups []Group) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	if s.cfg.ServiceID != "" {
		b.WriteString(`"service_id":`)
		b.Write(jsonString(s.cfg.ServiceID))
		b.WriteByte(',')
	}
	b.WriteString(`"node_id":`)
	b.Write(jsonString(s.nodeID))
	b.WriteString(`,"payload":[`)
	for i, g := range groups {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(g.JSON)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// send makes one attempt. Only 200 and 202 are success.
func (s *Service) send(body []byte) error {
	if !s.cfg.IsWebhook() {
		_, err := s.out.Write(append(body, '\n'))
		return err
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", s.cfg.Redacted(), innerError(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("HTTP request failed with status %d", resp.StatusCode)
	}
	return nil
}

// innerError drops net/http's "Post URL:" wrapping (its URL has no password; ours says POST already).
func innerError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
