package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var errAddrChanged = errors.New("peer address changed")

// peer owns the outbound raft stream to one peer: a bounded queue fed by Send and one goroutine that
// connects, writes and reconnects.
type peer struct {
	t      *Transport
	id     uint64
	queue  chan *raftpb.Message
	redial chan struct{} // signalled when the address changes
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	nodeID  string
	addr    string
	lastErr string

	connected atomic.Bool
	sent      atomic.Uint64
	dropped   atomic.Uint64
	snapBusy  atomic.Bool // a snapshot is in flight: at most one per peer

	failing bool // run goroutine only: the last attempt failed (keeps repeated failures out of the log)
}

func newPeer(t *Transport, id uint64, nodeID, addr string) *peer {
	p := &peer{
		t:      t,
		id:     id,
		queue:  make(chan *raftpb.Message, t.qsize),
		redial: make(chan struct{}, 1),
		nodeID: nodeID,
		addr:   addr,
	}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	return p
}

func (p *peer) update(nodeID, addr string) {
	p.mu.Lock()
	changed := p.addr != addr
	p.nodeID, p.addr = nodeID, addr
	p.mu.Unlock()
	if changed {
		select {
		case p.redial <- struct{}{}:
		default:
		}
	}
}

// logAttrs names the peer in a log line: by node-id, and by Raft ID.
func (p *peer) logAttrs() slog.Attr {
	nodeID, _ := p.target()
	return slog.Group("", "peer", cmp.Or(nodeID, hexID(p.id)), "peer_raft_id", hexID(p.id))
}

func (p *peer) target() (nodeID, addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nodeID, p.addr
}

func (p *peer) stats() PeerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PeerStats{
		Addr:             p.addr,
		Connected:        p.connected.Load(),
		Queued:           len(p.queue),
		Sent:             p.sent.Load(),
		Dropped:          p.dropped.Load(),
		LastError:        p.lastErr,
		SnapshotInFlight: p.snapBusy.Load(),
	}
}

func (p *peer) setErr(err error) {
	p.mu.Lock()
	p.lastErr = err.Error()
	p.mu.Unlock()
}

// drop counts n lost messages and tells raft the peer is unreachable (rate-limited by the reporter).
func (p *peer) drop(n int) {
	if n > 0 {
		p.dropped.Add(uint64(n))
		p.t.rep.unreachable(p.id)
	}
}

// run connects lazily (only once there is something to send) and keeps the stream up until the peer is
// removed or the transport closes.
func (p *peer) run() {
	backoff := backoffMin
	for {
		var first *raftpb.Message
		select {
		case <-p.ctx.Done():
			return
		case <-p.redial:
			continue // nothing queued, so nothing to reconnect for yet
		case first = <-p.queue:
		}
		s, err := p.connect()
		if err != nil {
			p.fail(fmt.Errorf("connect: %w", err))
			p.drop(1 + p.drain())
			if !p.sleepDropping(backoff) {
				return
			}
			backoff = min(2*backoff, backoffMax)
			continue
		}
		p.connected.Store(true)
		if p.failing {
			p.t.log.Info("raft stream connected", p.logAttrs())
			p.failing = false
		}
		connectedAt := time.Now()
		err = p.write(s, first)
		p.connected.Store(false)
		s.conn.Close()
		if p.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errAddrChanged) {
			backoff = backoffMin
			continue
		}
		p.fail(err)
		p.t.rep.unreachable(p.id)
		if time.Since(connectedAt) >= time.Second {
			// A stream that had been working: the usual cause is a restarted peer that is already
			// listening again, so reconnect at once.
			backoff = backoffMin
			continue
		}
		// A stream that broke right away would break again: back off so a flapping peer cannot spin us.
		if !p.sleepDropping(backoff) {
			return
		}
		backoff = min(2*backoff, backoffMax)
	}
}

func (p *peer) connect() (*stream, error) {
	nodeID, addr := p.target()
	h := p.t.hello()
	h.ToID, h.ToNodeID = p.id, nodeID
	return p.t.openStream(p.ctx, addr, kindRaft, h, 64<<10)
}

func (p *peer) fail(err error) {
	p.setErr(err)
	if !p.failing {
		p.t.log.Warn("raft stream down", p.logAttrs(), "err", err)
		p.failing = true
	} else {
		p.t.log.Debug("raft stream still down", p.logAttrs(), "err", err)
	}
}

// drain empties the queue without blocking and returns how many messages it discarded.
func (p *peer) drain() int {
	n := 0
	for {
		select {
		case <-p.queue:
			n++
		default:
			return n
		}
	}
}

// sleepDropping waits out a backoff while discarding whatever Send queues: while not connected, messages
// are dropped (raft retransmits), which also keeps stale messages from going out after a reconnect.
// It returns false if the peer is gone, and ends early if the address changes.
func (p *peer) sleepDropping(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-p.redial:
			return true
		case <-p.queue:
			p.drop(1)
		}
	}
}

// write sends first and then everything Send queues. It drains the queue into the buffered writer and
// flushes only when the queue is empty: large batches under load, one syscall per message when idle.
func (p *peer) write(s *stream, first *raftpb.Message) error {
	// The acceptor never writes after its status, so any read result means the stream is over. Watching
	// for it notices a restarted peer at once instead of on a later write.
	dead := make(chan error, 1)
	if !p.t.spawn(func() {
		_, err := s.br.ReadByte()
		if err == nil {
			err = errors.New("unexpected data from acceptor")
		}
		dead <- err
	}) {
		p.drop(1)
		return ErrClosed
	}

	var (
		buf      []byte
		batch    int
		deadline time.Time
		err      error
	)
	put := func(m *raftpb.Message) {
		if err != nil {
			batch++ // counted as dropped with the rest of the failed batch
			return
		}
		// Raft never mutates messages (or their entries) once handed out, so marshalling here, off the
		// raft loop, is safe.
		var merr error
		buf, merr = proto.MarshalOptions{}.MarshalAppend(buf[:0], m)
		if merr != nil {
			p.t.log.Error("cannot marshal raft message; dropped", p.logAttrs(), "err", merr)
			p.drop(1)
			return
		}
		if len(buf) > p.t.maxFrame {
			// The receiver would close the stream on it; drop just this one (raft bounds message size).
			p.t.log.Error("raft message exceeds MaxFrame; dropped", p.logAttrs(),
				"type", m.GetType().String(), "bytes", len(buf), "max", p.t.maxFrame)
			p.drop(1)
			return
		}
		// Refresh the write deadline at most once a second: a steady stream must not trip it, a stuck one must.
		if now := time.Now(); deadline.Sub(now) < raftWriteTimeout-time.Second {
			deadline = now.Add(raftWriteTimeout)
			_ = s.conn.SetWriteDeadline(deadline)
		}
		err = writeFrame(s.bw, buf)
		batch++
		if cap(buf) > 1<<20 {
			buf = nil // do not pin one huge message's buffer
		}
	}

	m := first
	for {
		put(m)
	drain:
		for err == nil {
			select {
			case m = <-p.queue:
				put(m)
			default:
				break drain
			}
		}
		if err == nil {
			err = s.bw.Flush()
		}
		if err != nil {
			p.drop(batch)
			return fmt.Errorf("write to %x: %w", p.id, err)
		}
		p.sent.Add(uint64(batch))
		batch = 0

		select {
		case m = <-p.queue:
		case err := <-dead:
			return fmt.Errorf("stream to %x closed by peer: %w", p.id, err)
		case <-p.redial:
			return errAddrChanged
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
}
