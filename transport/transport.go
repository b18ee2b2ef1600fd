package transport

import (
	"context"
	"errors"
	"fmt"
	"github.com/raftlite/raftlite/errcode"
	"io"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Dialer opens a connection to a peer's Raft address. Callers wrap TLS here (and in Config.Listener).
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

// Config configures a Transport.
type Config struct {
	ID        uint64       // this node's Raft ID (random uint64, not the user's node-id)
	NodeID    string       // this node's user-facing node-id
	Addr      string       // this node's advertised Raft address, sent in hellos
	Listener  net.Listener // bound listener for -raft-addr; the transport owns it after Start
	Dial      Dialer       // nil: net.Dialer{Timeout: 5s}.DialContext(ctx, "tcp", addr)
	Handler   Handler
	QueueSize int          // outbound raft message queue of each peer's each lane; 0 = 4096
	MaxFrame  int          // largest accepted frame in bytes; 0 = 256 MiB
	Logger    *slog.Logger // nil = slog.Default()
}

// Handler is the node side of the transport: it vets peers, consumes what arrives and hears delivery outcomes.
// Report* calls come from a transport goroutine, never from Send's caller, so they may block briefly.
type Handler interface {
	// AcceptStream vets an incoming raft or snapshot stream before anything else is read from it. A non-nil
	// error rejects the stream: its text is sent back to the dialer, and the connection is closed.
	AcceptStream(h Hello) error
	// HandleMessages receives raft messages read from one peer's stream, in order, in batches (all the frames
	// already buffered). Must not block long (the caller hands them to the raft loop's inbox).
	HandleMessages(msgs []*raftpb.Message)
	// ReportUnreachable and ReportSnapshot relay delivery outcomes back to raft.
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, ok bool)
	// OpenSnapshot returns the data to stream for an outgoing MsgSnap (a consistent database copy). It may
	// take a while (it runs on the snapshot sender's goroutine, never on Send's caller).
	OpenSnapshot(m *raftpb.Message) (io.ReadCloser, error)
	// ReceiveSnapshot consumes an incoming snapshot. data yields exactly the bytes the sender streamed and
	// returns a non-EOF error if the stream is cut or the checksum does not verify (checked before io.EOF is
	// returned). A nil return means the handler stored it; the transport then acknowledges success to the
	// sender. (The handler steps m into raft itself.)
	ReceiveSnapshot(h Hello, m *raftpb.Message, data io.Reader) error
	// HandleRPC serves one internal call; the error's text reaches the caller as *RemoteError.
	HandleRPC(ctx context.Context, method uint8, req []byte) ([]byte, error)
	// HandleStreamRPC serves a call whose response is a byte stream (e.g. a backup): write it to w.
	HandleStreamRPC(ctx context.Context, method uint8, req []byte, w io.Writer) error
}

// RemoteError is an error returned by the remote handler (or a rejection by the remote AcceptStream):
// its text and, if it had one, its code (package errcode).
type RemoteError struct {
	Code uint8
	Msg  string
}

// Error returns the remote text unchanged, so callers can relay it as is.
func (e *RemoteError) Error() string { return e.Msg }

// Unwrap gives the error with its code, so that errors.Is(err, errcode.ErrNotLeader) holds for a remote
// "not leader" as for a local one.
func (e *RemoteError) Unwrap() error {
	if e.Code == 0 {
		return nil
	}
	return errcode.FromWire(e.Code, e.Msg)
}

// ErrClosed is returned by calls made after (or cut short by) Close.
var ErrClosed = errors.New("transport closed")

// PeerStats describes one peer's outbound raft stream.
type PeerStats struct {
	Addr      string
	Connected bool // the outbound raft stream of appends is established
	// ControlConnected: the stream of every other raft message (heartbeats, votes, answers) is established.
	ControlConnected bool
	Queued           int    // messages waiting in the outbound queue
	Sent             uint64 // raft messages written and flushed
	Dropped          uint64 // raft messages dropped: queue full, not connected, or lost with a broken connection
	LastError        string // most recent connection or stream error, kept after recovery for diagnosis

	SnapshotInFlight bool
}

// Transport carries all node-to-node traffic on one port. See wire.go for the protocol.
type Transport struct {
	snapshots SnapshotStats // updated atomically

	cfg      Config
	h        Handler
	log      *slog.Logger
	dialer   Dialer
	maxFrame int
	qsize    int
	lim      limits

	ctx    context.Context // cancelled by Close; parent of every peer's context
	cancel context.CancelFunc
	rep    *reporter
	pool   rpcPool

	// peers is copy-on-write so Send, the hot path, reads it without a lock.
	peers atomic.Pointer[map[uint64]*peer]

	mu        sync.Mutex // guards peer map writes, started/reporting, and wg.Add against Close's wg.Wait
	started   bool
	reporting bool
	closed    atomic.Bool
	wg        sync.WaitGroup

	connMu      sync.Mutex
	conns       map[*trackedConn]struct{} // every open connection, so Close can cut them all
	connsClosed bool
	inbound     map[inboundKey]net.Conn // current inbound raft streams of each peer

	rejectLog atomic.Int64 // unix nanos of the last "too many connections" log line

	clusterID atomic.Uint64 // sent in every hello; see SetClusterID
}

// SetClusterID sets the cluster ID this node sends in its hellos from now on. A node learns it when it
// bootstraps or joins a cluster; receivers refuse raft traffic from another cluster (see Hello).
func (t *Transport) SetClusterID(id uint64) { t.clusterID.Store(id) }

// hello is this node's side of a hello, addressed to nobody yet.
func (t *Transport) hello() Hello {
	return Hello{FromID: t.cfg.ID, FromNodeID: t.cfg.NodeID, FromAddr: t.cfg.Addr, FromClusterID: t.clusterID.Load()}
}

// New validates cfg and returns a Transport that is not yet accepting (see Start).
func New(cfg Config) (*Transport, error) {
	switch {
	case cfg.ID == 0:
		return nil, errors.New("transport: Config.ID must be non-zero")
	case cfg.Listener == nil:
		return nil, errors.New("transport: Config.Listener is required")
	case cfg.Handler == nil:
		return nil, errors.New("transport: Config.Handler is required")
	case cfg.QueueSize < 0:
		return nil, fmt.Errorf("transport: Config.QueueSize %d is negative", cfg.QueueSize)
	case cfg.MaxFrame < 0:
		return nil, fmt.Errorf("transport: Config.MaxFrame %d is negative", cfg.MaxFrame)
	}
	// Our hellos must fit the 4 KiB every receiver enforces; half of it leaves room for the peer's node-id.
	if len(cfg.NodeID)+len(cfg.Addr) > maxHelloFrame/2 {
		return nil, errors.New("transport: Config.NodeID and Config.Addr are too long for a hello")
	}
	t := &Transport{
		cfg:      cfg,
		h:        cfg.Handler,
		log:      cfg.Logger,
		dialer:   cfg.Dial,
		maxFrame: cfg.MaxFrame,
		qsize:    cfg.QueueSize,
		lim:      defaultLimits(),
		conns:    make(map[*trackedConn]struct{}),
		inbound:  make(map[inboundKey]net.Conn),
	}
	if t.log == nil {
		t.log = slog.Default()
	}
	t.log = t.log.With("component", "transport")
	if t.dialer == nil {
		d := &net.Dialer{Timeout: dialTimeout}
		t.dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	if t.maxFrame == 0 {
		t.maxFrame = defaultMaxFrame
	}
	if t.qsize == 0 {
		t.qsize = defaultQueueSize
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.rep = newReporter(t.h)
	t.pool.idle = make(map[string][]*rpcConn)
	empty := map[uint64]*peer{}
	t.peers.Store(&empty)
	return t, nil
}

// Start begins accepting connections. Calling it again does nothing.
func (t *Transport) Start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.closed.Load() {
		return
	}
	t.started = true
	t.startReporterLocked()
	sem := make(chan struct{}, t.lim.maxConns)
	t.goLocked(func() { t.acceptLoop(sem) })
}

// startReporterLocked starts the reporter goroutine with the first Start or SetPeer: outbound traffic (and
// its reports) may begin before the node accepts connections.
func (t *Transport) startReporterLocked() {
	if !t.reporting {
		t.reporting = true
		t.goLocked(func() { t.rep.run(t.ctx) })
	}
}

// SetPeer adds a peer, or updates its node-id and address; an address change makes its stream reconnect.
func (t *Transport) SetPeer(id uint64, nodeID, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return
	}
	old := *t.peers.Load()
	if p := old[id]; p != nil {
		p.update(nodeID, addr)
		return
	}
	t.startReporterLocked()
	p := newPeer(t, id, nodeID, addr)
	next := maps.Clone(old)
	next[id] = p
	t.peers.Store(&next)
	t.goLocked(p.app.run)
	t.goLocked(p.ctl.run)
}

// RemovePeer drops the peer's queue and closes its connections (raft stream and any snapshot in flight).
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.peers.Load()
	p := old[id]
	if p == nil {
		return
	}
	next := maps.Clone(old)
	delete(next, id)
	t.peers.Store(&next)
	p.cancel() // closes its connections via context.AfterFunc and ends its goroutine
}

// Send never blocks: each message goes to its peer's bounded queue; if the queue is full, or the peer is
// unknown, the message is dropped and the peer reported unreachable (rate-limited: at most once per 100 ms
// per peer, since each report is a trip through the raft loop). MsgSnap messages go to the snapshot sender.
func (t *Transport) Send(msgs []*raftpb.Message) {
	if t.closed.Load() {
		return
	}
	peers := *t.peers.Load()
	for _, m := range msgs {
		to := m.GetTo()
		p := peers[to]
		if p == nil {
			t.rep.unreachable(to)
			if m.GetType() == raftpb.MsgSnap {
				t.rep.snapshot(to, false)
			}
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			t.startSnapshot(p, m)
			continue
		}
		select {
		case p.laneFor(m).queue <- m:
		default:
			p.dropped.Add(1)
			t.rep.unreachable(to)
		}
	}
}

// Stats returns a snapshot of every peer's outbound state.
// SnapshotStats counts database snapshots streamed by this transport.
type SnapshotStats struct {
	Sent, BytesSent, Received, BytesReceived atomic.Uint64
}

// Snapshots returns the counts of snapshots sent and received so far.
func (t *Transport) Snapshots() (sent, bytesSent, received, bytesReceived uint64) {
	s := &t.snapshots
	return s.Sent.Load(), s.BytesSent.Load(), s.Received.Load(), s.BytesReceived.Load()
}

func (t *Transport) Stats() map[uint64]PeerStats {
	peers := *t.peers.Load()
	out := make(map[uint64]PeerStats, len(peers))
	for id, p := range peers {
		out[id] = p.stats()
	}
	return out
}

// Close stops accepting, closes every connection and waits for the transport's goroutines, including
// handler calls in progress (HandleRPC and HandleStreamRPC see their context cancelled).
// The listener is closed even if Start was never called.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return nil
	}
	t.closed.Store(true) // under mu: no goroutine can be added after this
	t.mu.Unlock()

	t.cancel()
	err := t.cfg.Listener.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	t.pool.closeAll()
	t.closeAllConns()
	t.wg.Wait()
	empty := map[uint64]*peer{}
	t.peers.Store(&empty)
	if err != nil {
		return fmt.Errorf("transport: close listener: %w", err)
	}
	return nil
}

// goLocked runs f on a goroutine Close waits for. Caller holds t.mu and has checked t.closed.
func (t *Transport) goLocked(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// spawn is goLocked for callers not holding t.mu; it reports false once Close has begun.
func (t *Transport) spawn(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return false
	}
	t.goLocked(f)
	return true
}

// dial opens a tracked outbound connection with TCP keepalive enabled.
func (t *Transport) dial(ctx context.Context, addr string) (net.Conn, error) {
	if t.closed.Load() {
		return nil, ErrClosed
	}
	c, err := t.dialer(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	setKeepAlive(c)
	return t.track(c)
}

// trackedConn removes itself from the transport's registry when closed.
type trackedConn struct {
	net.Conn
	t *Transport
}

// NetConn returns the connection beneath, as tls.Conn does.
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

func (c *trackedConn) Close() error {
	c.t.connMu.Lock()
	delete(c.t.conns, c)
	c.t.connMu.Unlock()
	return c.Conn.Close()
}

func (t *Transport) track(c net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: c, t: t}
	t.connMu.Lock()
	if t.connsClosed {
		t.connMu.Unlock()
		c.Close()
		return nil, ErrClosed
	}
	t.conns[tc] = struct{}{}
	t.connMu.Unlock()
	return tc, nil
}

func (t *Transport) closeAllConns() {
	t.connMu.Lock()
	t.connsClosed = true
	all := make([]*trackedConn, 0, len(t.conns))
	for c := range t.conns {
		all = append(all, c)
	}
	t.connMu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// setKeepAlive turns on TCP keepalive, looking through TLS-style wrappers. Raft streams carry no read
// deadline, so keepalive is what notices a peer that vanished without closing.
func setKeepAlive(c net.Conn) {
	for range 4 { // bounded: wrappers nest at most a few deep
		switch x := c.(type) {
		case *net.TCPConn:
			_ = x.SetKeepAliveConfig(net.KeepAliveConfig{
				Enable: true, Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount,
			})
			return
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return
		}
	}
}

// hexID formats a raft ID the way logs and errors show it.
func hexID(id uint64) string { return fmt.Sprintf("%x", id) }

// aLongTimeAgo is a deadline in the past: setting it aborts blocked I/O at once.
var aLongTimeAgo = time.Unix(1, 0)
