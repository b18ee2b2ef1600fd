package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/store"
)

// QueueConfig sizes the queued-writes path (rqlited's -write-queue-* flags).
type QueueConfig struct {
	Capacity  int           // requests the queue holds; 0 means 1024
	BatchSize int           // requests merged into one log entry; 0 means 128
	Timeout   time.Duration // a batch is sent this long after its first request at the latest; 0 means 50 ms
	Tx        bool          // run each batch as one transaction
}

// queue collects queued writes (?queue on /db/execute) and sends them in batches, one log entry per batch:
// more throughput, and the write is acknowledged before it is durable.
type queue struct {
	svc  *Service
	cfg  QueueConfig
	in   chan *queued
	seq  atomic.Int64 // last sequence number handed out; starts at the node's start time
	done atomic.Int64 // sequence number of the last request written
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type queued struct {
	stmts   []*command.Statement
	creds   *command.Credentials // the caller's, checked again by the leader; nil without -auth
	seq     int64
	written chan struct{} // closed once the batch holding it is applied
}

func newQueue(svc *Service, cfg QueueConfig) *queue {
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1024
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 128
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	q := &queue{svc: svc, cfg: cfg, in: make(chan *queued, cfg.Capacity), stop: make(chan struct{})}
	q.seq.Store(time.Now().UnixNano())
	q.wg.Add(1)
	go q.run()
	return q
}

var errQueueTimeout = errors.New("timed out enqueuing operation")

// add queues statements and returns the request's sequence number.
func (q *queue) add(ctx context.Context, stmts []*command.Statement, creds *command.Credentials) (*queued, error) {
	r := &queued{stmts: stmts, creds: creds, written: make(chan struct{})}
	select {
	case <-q.stop:
		return nil, store.ErrStopped
	default:
	}
	// Numbering and enqueueing happen together so that sequence numbers follow queue order.
	q.svc.queueMu.Lock()
	defer q.svc.queueMu.Unlock()
	r.seq = q.seq.Add(1)
	select {
	case q.in <- r:
		return r, nil
	default:
	}
	// Full: wait for room, as long as the caller allows.
	select {
	case q.in <- r:
		return r, nil
	case <-ctx.Done():
		return nil, errQueueTimeout
	}
}

func (q *queue) run() {
	defer q.wg.Done()
	for {
		var first *queued
		select {
		case first = <-q.in:
		case <-q.stop:
			return
		}
		batch := []*queued{first}
		timer := time.NewTimer(q.cfg.Timeout)
	fill:
		for len(batch) < q.cfg.BatchSize {
			select {
			case r := <-q.in:
				batch = append(batch, r)
			case <-timer.C:
				break fill
			case <-q.stop:
				break fill
			}
		}
		timer.Stop()
		q.write(batch)
	}
}

// write sends one batch: one request per run of requests from the same caller, whose credentials the
// leader checks again. Queued requests were acknowledged already, so the batch is retried until the
// cluster takes it (as rqlite does); per-statement errors are not reported to anyone.
func (q *queue) write(batch []*queued) {
	for start := 0; start < len(batch); {
		end := start + 1
		for end < len(batch) && proto.Equal(batch[end].creds, batch[start].creds) {
			end++
		}
		if !q.writeRun(batch[start:end]) {
			return
		}
		start = end
	}
	q.done.Store(batch[len(batch)-1].seq)
	for _, r := range batch {
		close(r.written)
	}
}

// writeRun writes the statements of requests that share credentials. It returns false if the node is
// stopping and the writes were dropped.
func (q *queue) writeRun(run []*queued) bool {
	req := &command.Request{Mode: command.Mode_MODE_EXECUTE, Transaction: q.cfg.Tx}
	for _, r := range run {
		req.Statements = append(req.Statements, r.stmts...)
	}
	if len(req.Statements) > 0 {
		env := newEnv()
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if c := run[0].creds; c != nil {
				ctx = store.WithCredentials(ctx, c.GetUsername(), c.GetPassword())
			}
			_, _, err := q.svc.viaLeader(nil, nil, nil,
				func() error { _, err := q.svc.store.Execute(ctx, req, env); return err },
				func() error {
					_, err := q.svc.store.Forward(ctx, &command.ForwardRequest{Request: req, NowUnixMs: env.NowUnixMs, Seed: env.Seed})
					return err
				})
			cancel()
			if err == nil {
				break
			}
			if errors.Is(err, store.ErrUnauthorized) {
				// The leader's credentials file differs from this node's: retrying cannot help.
				q.svc.log.Error("queued writes refused by the leader; dropping them", "err", err, "requests", len(run))
				return true
			}
			if attempt == 0 || attempt%30 == 0 {
				q.svc.log.Warn("queued write not accepted yet; retrying", "err", err, "attempt", attempt+1)
			}
			select {
			case <-q.stop:
				if attempt > 0 {
					q.svc.log.Error("node stopping: dropping queued writes", "requests", len(run))
					return false
				}
			case <-time.After(time.Second):
			}
		}
	}
	return true
}

// close stops taking requests and writes what is queued, giving up when ctx ends.
func (q *queue) close(ctx context.Context) {
	q.once.Do(func() {
		for len(q.in) > 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		close(q.stop)
		q.wg.Wait()
	})
}

// handleQueued serves /db/execute?queue.
func (s *Service) handleQueued(w http.ResponseWriter, r *http.Request, p *params, body []byte) {
	start := time.Now()
	if !p.noleader {
		if _, ok := s.store.Leader(); !ok {
			http.Error(w, "leader not found", http.StatusServiceUnavailable)
			return
		}
	}
	// With wait, no statements (an empty body, or []) is a barrier: it returns once everything queued
	// before it is committed.
	var stmts []*command.Statement
	var err error
	if len(bytes.TrimSpace(body)) == 0 {
		err = errNoStatements
	} else {
		stmts, err = parseStatements(body, false)
	}
	if err != nil && !(errors.Is(err, errNoStatements) && p.wait) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if prepare(stmts, p, newEnv(), true) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	var creds *command.Credentials
	if s.auth.Enabled() {
		user, pass, _ := r.BasicAuth()
		creds = &command.Credentials{Username: user, Password: pass}
	}
	qr, err := s.queue.add(ctx, stmts, creds)
	if err != nil {
		s.respond(w, p, start, store.Response{Error: err.Error()})
		return
	}
	if p.wait {
		select {
		case <-qr.written:
		case <-ctx.Done():
			http.Error(w, "queue wait timeout", http.StatusRequestTimeout)
			return
		}
	}
	e := encoder{timings: p.timings}
	e.response(nil, "", time.Since(start).Seconds(), qr.seq, 0)
	writeJSON(w, p, http.StatusOK, e.buf)
}
