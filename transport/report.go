package transport

import (
	"context"
	"sync"
	"time"
)

// reporter relays delivery outcomes to the Handler on its own goroutine. Send must never block, and the
// handler's Report* methods typically feed the raft loop that is calling Send, so calling them inline could
// deadlock; queueing them here cannot.
type reporter struct {
	h    Handler
	wake chan struct{}

	mu      sync.Mutex
	last    map[uint64]time.Time // when each peer was last reported unreachable (rate limit)
	waiting map[uint64]bool      // an unreachable report for the peer is already queued
	queue   []report
}

type report struct {
	id          uint64
	unreachable bool // else a snapshot outcome
	ok          bool
}

func newReporter(h Handler) *reporter {
	return &reporter{
		h:       h,
		wake:    make(chan struct{}, 1),
		last:    make(map[uint64]time.Time),
		waiting: make(map[uint64]bool),
	}
}

// unreachable queues ReportUnreachable(id) unless the peer was reported less than unreachableInterval ago.
func (r *reporter) unreachable(id uint64) {
	now := time.Now()
	r.mu.Lock()
	if at, ok := r.last[id]; ok && now.Sub(at) < unreachableInterval {
		r.mu.Unlock()
		return
	}
	if len(r.last) >= 1024 { // only unknown ids can grow this; forget the stale ones
		for k, at := range r.last {
			if now.Sub(at) >= unreachableInterval {
				delete(r.last, k)
			}
		}
	}
	r.last[id] = now
	if r.waiting[id] {
		r.mu.Unlock()
		return
	}
	r.waiting[id] = true
	r.queue = append(r.queue, report{id: id, unreachable: true})
	r.mu.Unlock()
	r.signal()
}

// snapshot queues ReportSnapshot(id, ok). These are never coalesced: raft expects one per MsgSnap.
func (r *reporter) snapshot(id uint64, ok bool) {
	r.mu.Lock()
	r.queue = append(r.queue, report{id: id, ok: ok})
	r.mu.Unlock()
	r.signal()
}

func (r *reporter) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		r.mu.Lock()
		batch := r.queue
		r.queue = nil
		for _, rp := range batch {
			if rp.unreachable {
				delete(r.waiting, rp.id)
			}
		}
		r.mu.Unlock()
		for _, rp := range batch {
			if rp.unreachable {
				r.h.ReportUnreachable(rp.id)
			} else {
				r.h.ReportSnapshot(rp.id, rp.ok)
			}
		}
	}
}
