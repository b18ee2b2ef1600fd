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

// peer owns the outbound raft traffic to one peer: two lanes, each a stream of its own with a bounded
// queue fed by Send and one goroutine that connects, writes and reconnects. Appends (MsgApp) take one
// lane; everything else (heartbeats, votes, append and read-index answers, leadership transfer) takes the
// other, so that a heartbeat never waits behind megabytes of entries on the same connection: a follower
// that hears no heartbeat for an election timeout starts an election, and a leader whose vote answers are
// late loses one.
//
// Splitting the traffic reorders messages only between lanes, never within one, and raft is built for a
// network that reorders: a heartbeat carries a commit index no higher than what the follower has already
// acknowledged (raft's min(match, committed)), so it can never commit an entry the follower lacks.
type peer struct {
	t      *Transport
	id     uint64
	app    *lane // MsgApp only
	ctl    *lane // every other message
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	nodeID  string
	addr    string
	lastErr string

	sent     atomic.Uint64
	dropped  atomic.Uint64
	snapBusy atomic.Bool // a snapshot is in flight: at most one per peer

	// ctlRefusedUntil (unix nanos) is set when the peer refused the control lane's connection kind (a
	// node of an older version): until then control messages share the append lane, as they once did.
	ctlRefusedUntil atomic.Int64
}

// lane is one outbound raft stream of a peer.
type lane struct {
	p      *peer
	kind   byte // kindRaft (appends) or kindRaftControl
	name   string
	queue  chan *raftpb.Message
	redial chan struct{} // signalled when the address changes

	connected atomic.Bool
	failing   bool // run goroutine only: the last attempt failed (keeps repeated failures out of the log)
}

// ctlRefusedRetry is how long control messages share the append lane after a peer refused the control
// lane, before it is tried again (the peer may have been upgraded meanwhile).
const ctlRefusedRetry = time.Minute

func newPeer(t *Transport, id uint64, nodeID, addr string) *peer {
	p := &peer{t: t, id: id, nodeID: nodeID, addr: addr}
	p.app = &lane{p: p, kind: kindRaft, name: "append", queue: make(chan *raftpb.Message, t.qsize), redial: make(chan struct{}, 1)}
	p.ctl = &lane{p: p, kind: kindRaftControl, name: "control", queue: make(chan *raftpb.Message, t.qsize), redial: make(chan struct{}, 1)}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	return p
}

// laneFor picks the lane a message travels on.
func (p *peer) laneFor(m *raftpb.Message) *lane {
	if m.GetType() == raftpb.MsgApp {
		return p.app
	}
	if until := p.ctlRefusedUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return p.app
	}
	return p.ctl
}

func (p *peer) update(nodeID, addr string) {
	p.mu.Lock()
	changed := p.addr != addr
	p.nodeID, p.addr = nodeID, addr
	p.mu.Unlock()
	if changed {
		p.ctlRefusedUntil.Store(0) // a new address may be a new node
		for _, l := range []*lane{p.app, p.ctl} {
			select {
			case l.redial <- struct{}{}:
			default:
			}
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
		Connected:        p.app.connected.Load(),
		ControlConnected: p.ctl.connected.Load(),
		Queued:           len(p.app.queue) + len(p.ctl.queue),
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
func (l *lane) run() {
	p := l.p
	backoff := backoffMin
	for {
		var first *raftpb.Message
		select {
		case <-p.ctx.Done():
			return
		case <-l.redial:
			continue // nothing queued, so nothing to reconnect for yet
		case first = <-l.queue:
		}
		s, err := l.connect()
		if err != nil {
			if l.refused(err) {
				l.handOver(first)
				continue
			}
			l.fail(fmt.Errorf("connect: %w", err))
			p.drop(1 + l.drain())
			if !l.sleepDropping(backoff) {
				return
			}
			backoff = min(2*backoff, backoffMax)
			continue
		}
		l.connected.Store(true)
		if l.failing {
			p.t.log.Info("raft stream connected", p.logAttrs(), "lane", l.name)
			l.failing = false
		}
		connectedAt := time.Now()
		err = l.write(s, first)
		l.connected.Store(false)
		s.conn.Close()
		if p.ctx.Err() != nil {
			return
		}
		if errors.Is(err, errAddrChanged) {
			backoff = backoffMin
			continue
		}
		l.fail(err)
		p.t.rep.unreachable(p.id)
		if time.Since(connectedAt) >= time.Second {
			// A stream that had been working: the usual cause is a restarted peer that is already
			// listening again, so reconnect at once.
			backoff = backoffMin
			continue
		}
		// A stream that broke right away would break again: back off so a flapping peer cannot spin us.
		if !l.sleepDropping(backoff) {
			return
		}
		backoff = min(2*backoff, backoffMax)
	}
}

func (l *lane) connect() (*stream, error) {
	p := l.p
	nodeID, addr := p.target()
	h := p.t.hello()
	h.ToID, h.ToNodeID = p.id, nodeID
	bufSize := 64 << 10
	if l.kind == kindRaftControl {
		bufSize = 4 << 10 // small messages only
	}
	return p.t.openStream(p.ctx, addr, l.kind, h, bufSize)
}

// refused reports whether err says the peer does not know the control lane's connection kind: a node of
// an older version closes such a connection without a word. It then shares the append lane for a while.
func (l *lane) refused(err error) bool {
	if l.kind != kindRaftControl || !errors.Is(err, errNoStatus) {
		return false
	}
	p := l.p
	if p.ctlRefusedUntil.Swap(time.Now().Add(ctlRefusedRetry).UnixNano()) == 0 {
		p.t.log.Info("peer closed the control stream's handshake without an answer (an older version, or a cut connection): its heartbeats and votes share the append stream for now",
			p.logAttrs(), "retry_in", ctlRefusedRetry)
	}
	return true
}

// handOver moves first, and whatever else waits in the lane's queue, to the append lane.
func (l *lane) handOver(first *raftpb.Message) {
	for m := first; m != nil; {
		select {
		case l.p.app.queue <- m:
		default:
			l.p.drop(1)
		}
		select {
		case m = <-l.queue:
		default:
			m = nil
		}
	}
}

func (l *lane) fail(err error) {
	p := l.p
	p.setErr(err)
	if !l.failing {
		p.t.log.Warn("raft stream down", p.logAttrs(), "lane", l.name, "err", err)
		l.failing = true
	} else {
		p.t.log.Debug("raft stream still down", p.logAttrs(), "lane", l.name, "err", err)
	}
}

// drain empties the queue without blocking and returns how many messages it discarded.
func (l *lane) drain() int {
	n := 0
	for {
		select {
		case <-l.queue:
			n++
		default:
			return n
		}
	}
}

// sleepDropping waits out a backoff while discarding whatever Send queues: while not connected, messages
// are dropped (raft retransmits), which also keeps stale messages from going out after a reconnect.
// It returns false if the peer is gone, and ends early if the address changes.
func (l *lane) sleepDropping(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-l.p.ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-l.redial:
			return true
		case <-l.queue:
			l.p.drop(1)
		}
	}
}

// write sends first and then everything Send queues. It drains the queue into the buffered writer and
// flushes only when the queue is empty: large batches under load, one syscall per message when idle.
func (l *lane) write(s *stream, first *raftpb.Message) error {
	p := l.p
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
			case m = <-l.queue:
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
		case m = <-l.queue:
		case err := <-dead:
			return fmt.Errorf("stream to %x closed by peer: %w", p.id, err)
		case <-l.redial:
			return errAddrChanged
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
}
