// Package memnet is an in-memory network for tests of several nodes in one process: it carries raft
// messages, snapshots and internal calls between endpoints that stand in for package transport, and it can
// cut links (partitions), drop messages and delay them (which reorders them). The core packages test
// elections, forwarding, reads, snapshots and membership changes over it, fast, without sockets; the
// system tests use the real transport.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/transport"
)

// Network connects endpoints by address.
type Network struct {
	mu        sync.Mutex
	endpoints map[string]*Endpoint
	cut       map[[2]string]bool // directed: from address, to address
	dropRate  float64
	maxDelay  time.Duration
	rng       *rand.Rand
}

// New returns an empty network: no loss, no delay.
func New() *Network {
	return &Network{endpoints: map[string]*Endpoint{}, cut: map[[2]string]bool{}, rng: rand.New(rand.NewPCG(1, 2))}
}

// Faults sets the share of raft messages dropped (0 to 1) and the longest random delay of each.
func (n *Network) Faults(dropRate float64, maxDelay time.Duration) {
	n.mu.Lock()
	n.dropRate, n.maxDelay = dropRate, maxDelay
	n.mu.Unlock()
}

// Partition cuts every link between the groups of addresses (both ways); Heal restores them all.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					n.cut[[2]string{a, b}] = true
				}
			}
		}
	}
}

// Heal restores every link.
func (n *Network) Heal() {
	n.mu.Lock()
	n.cut = map[[2]string]bool{}
	n.mu.Unlock()
}

// Endpoint is one node's place on the network: what package transport would be for it.
type Endpoint struct {
	net     *Network
	addr    string
	id      uint64
	nodeID  string
	h       transport.Handler
	cluster atomic.Uint64
	closed  atomic.Bool
	mu      sync.Mutex
	peers   map[uint64]peer
	inbox   chan func()
	done    chan struct{}
	sent    atomic.Uint64 // snapshots sent and received, for Snapshots
	recv    atomic.Uint64
}

type peer struct{ nodeID, addr string }

// Endpoint attaches a node (Raft ID id, node-id nodeID) at addr, delivering to h.
func (n *Network) Endpoint(addr string, id uint64, nodeID string, h transport.Handler) *Endpoint {
	e := &Endpoint{net: n, addr: addr, id: id, nodeID: nodeID, h: h, peers: map[uint64]peer{},
		inbox: make(chan func(), 4096), done: make(chan struct{})}
	n.mu.Lock()
	n.endpoints[addr] = e
	n.mu.Unlock()
	return e
}

// Start delivers what arrives, in order, on a goroutine of the endpoint's own.
func (e *Endpoint) Start() {
	go func() {
		for {
			select {
			case f := <-e.inbox:
				f()
			case <-e.done:
				return
			}
		}
	}()
}

// Close detaches the endpoint: nothing reaches it any more.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.net.mu.Lock()
	if e.net.endpoints[e.addr] == e {
		delete(e.net.endpoints, e.addr)
	}
	e.net.mu.Unlock()
	close(e.done)
	return nil
}

func (e *Endpoint) SetPeer(id uint64, nodeID, addr string) {
	e.mu.Lock()
	e.peers[id] = peer{nodeID, addr}
	e.mu.Unlock()
}

func (e *Endpoint) RemovePeer(id uint64) {
	e.mu.Lock()
	delete(e.peers, id)
	e.mu.Unlock()
}

func (e *Endpoint) SetClusterID(id uint64) { e.cluster.Store(id) }

func (e *Endpoint) Stats() map[uint64]transport.PeerStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[uint64]transport.PeerStats, len(e.peers))
	for id, p := range e.peers {
		out[id] = transport.PeerStats{Addr: p.addr, Connected: true}
	}
	return out
}

func (e *Endpoint) Snapshots() (sent, bytesSent, received, bytesReceived uint64) {
	return e.sent.Load(), 0, e.recv.Load(), 0
}

// route finds the endpoint addr names, if the link from e to it is up.
func (e *Endpoint) route(addr string) (*Endpoint, bool) {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	dst, ok := e.net.endpoints[addr]
	return dst, ok && !e.net.cut[[2]string{e.addr, addr}] && !e.closed.Load()
}

// fate decides whether a raft message is lost, and how long it takes.
func (e *Endpoint) fate() (lost bool, delay time.Duration) {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	lost = e.net.rng.Float64() < e.net.dropRate
	if e.net.maxDelay > 0 {
		delay = time.Duration(e.net.rng.Int64N(int64(e.net.maxDelay)))
	}
	return lost, delay
}

func (e *Endpoint) hello(to uint64, p peer) transport.Hello {
	return transport.Hello{FromID: e.id, FromNodeID: e.nodeID, FromAddr: e.addr, FromClusterID: e.cluster.Load(), ToID: to, ToNodeID: p.nodeID}
}

// Send delivers raft messages as the transport's streams would: vetted by the receiver's AcceptStream,
// each in order on its inbox (unless the network drops or delays it), snapshots on a stream of their own.
func (e *Endpoint) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		e.mu.Lock()
		p, known := e.peers[m.GetTo()]
		e.mu.Unlock()
		dst, up := e.route(p.addr)
		if !known || !up {
			e.h.ReportUnreachable(m.GetTo())
			continue
		}
		hello := e.hello(m.GetTo(), p)
		if m.GetType() == raftpb.MessageType_MsgSnap {
			go e.sendSnapshot(dst, hello, m)
			continue
		}
		lost, delay := e.fate()
		if lost {
			continue
		}
		deliver := func() {
			if dst.h.AcceptStream(hello) == nil {
				dst.h.HandleMessages([]*raftpb.Message{m})
			}
		}
		enqueue := func() {
			select {
			case dst.inbox <- deliver:
			default: // the receiver's queue is full: lost, as with a full stream
			}
		}
		if delay > 0 {
			time.AfterFunc(delay, enqueue)
		} else {
			enqueue()
		}
	}
}

func (e *Endpoint) sendSnapshot(dst *Endpoint, hello transport.Hello, m *raftpb.Message) {
	ok := false
	defer func() { e.h.ReportSnapshot(m.GetTo(), ok) }()
	if dst.h.AcceptStream(hello) != nil {
		return
	}
	data, err := e.h.OpenSnapshot(m)
	if err != nil {
		return
	}
	defer data.Close()
	if err := dst.h.ReceiveSnapshot(hello, m, data); err != nil {
		return
	}
	e.sent.Add(1)
	dst.recv.Add(1)
	ok = true
}

var errUnreachable = errors.New("memnet: unreachable")

// Call runs an internal call on the node at addr, with its error's code, as the transport carries it.
func (e *Endpoint) Call(ctx context.Context, addr string, method uint8, req []byte) ([]byte, error) {
	dst, up := e.route(addr)
	if !up {
		return nil, fmt.Errorf("rpc %d to %s: %w", method, addr, errUnreachable)
	}
	resp, err := dst.h.HandleRPC(ctx, method, req)
	if err != nil {
		return nil, &transport.RemoteError{Code: errcode.WireCode(err), Msg: err.Error()}
	}
	return resp, nil
}

// CallOnce is Call: a call in memory is never resent.
func (e *Endpoint) CallOnce(ctx context.Context, addr string, method uint8, req []byte) ([]byte, error) {
	return e.Call(ctx, addr, method, req)
}

// CallStream runs a streamed internal call on the node at addr.
func (e *Endpoint) CallStream(ctx context.Context, addr string, method uint8, req []byte) (io.ReadCloser, error) {
	dst, up := e.route(addr)
	if !up {
		return nil, fmt.Errorf("rpc %d to %s: %w", method, addr, errUnreachable)
	}
	pr, pw := io.Pipe()
	go func() {
		err := dst.h.HandleStreamRPC(ctx, method, req, pw)
		if err != nil {
			err = &transport.RemoteError{Code: errcode.WireCode(err), Msg: err.Error()}
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}
