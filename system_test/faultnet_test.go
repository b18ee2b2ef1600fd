package system_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// faultNet sits between the nodes of a cluster. Each node advertises a proxy address for its Raft port;
// the proxy forwards to the node's real port, subject to a rule per (from, to) pair of node-ids. The
// calling node is read from the hello that opens every connection of the transport.
type faultNet struct {
	mu      sync.Mutex
	rules   map[pair]faultRule
	proxies []*faultProxy
}

type pair struct{ from, to string }

type faultRule int

const (
	pass      faultRule = iota
	cut                 // connections are reset and new ones refused
	blackhole           // bytes are read and dropped: the sender sees nothing wrong, the receiver nothing at all
)

type faultProxy struct {
	net    *faultNet
	node   string
	target string
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	delay  time.Duration // added before each forwarded chunk
	closed bool
}

func newFaultNet() *faultNet { return &faultNet{rules: map[pair]faultRule{}} }

// add starts a proxy for node, forwarding to target, and returns the address to advertise.
func (f *faultNet) add(node, target string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	p := &faultProxy{net: f, node: node, target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	f.mu.Lock()
	f.proxies = append(f.proxies, p)
	f.mu.Unlock()
	p.wg.Add(1)
	go p.serve()
	return ln.Addr().String(), nil
}

func (f *faultNet) rule(from, to string) faultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rules[pair{from, to}]
}

// partition splits the nodes into groups that cannot reach one another; mode is cut or blackhole.
func (f *faultNet) partition(mode faultRule, groups ...[]string) {
	f.mu.Lock()
	f.rules = map[pair]faultRule{}
	for i, a := range groups {
		for j, b := range groups {
			if i == j {
				continue
			}
			for _, x := range a {
				for _, y := range b {
					f.rules[pair{x, y}] = mode
				}
			}
		}
	}
	proxies := append([]*faultProxy(nil), f.proxies...)
	f.mu.Unlock()
	if mode == cut {
		for _, p := range proxies {
			p.closeAll()
		}
	}
}

// heal removes every rule.
func (f *faultNet) heal() {
	f.mu.Lock()
	f.rules = map[pair]faultRule{}
	f.mu.Unlock()
}

// setDelay slows every connection into node.
func (f *faultNet) setDelay(node string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.proxies {
		if p.node == node {
			p.mu.Lock()
			p.delay = d
			p.mu.Unlock()
		}
	}
}

func (f *faultNet) close() {
	f.mu.Lock()
	proxies := f.proxies
	f.mu.Unlock()
	for _, p := range proxies {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.ln.Close()
		p.closeAll()
		p.wg.Wait()
	}
}

func (p *faultProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *faultProxy) handle(in net.Conn) {
	if !p.track(in) {
		in.Close()
		return
	}
	defer p.untrack(in)
	defer in.Close()
	br := bufio.NewReader(in)
	in.SetReadDeadline(time.Now().Add(10 * time.Second))
	head, from := readCaller(br)
	in.SetReadDeadline(time.Time{})
	if head == nil || p.net.rule(from, p.node) == cut {
		return
	}
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(out) {
		out.Close()
		return
	}
	defer p.untrack(out)
	defer out.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(out, io.MultiReader(bytes.NewReader(head), br), from, p.node); done <- struct{}{} }()
	go func() { p.pipe(in, out, p.node, from); done <- struct{}{} }()
	<-done
}

// pipe copies src to dst, applying the rule for from->to to every chunk as it goes.
func (p *faultProxy) pipe(dst net.Conn, src io.Reader, from, to string) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			switch p.net.rule(from, to) {
			case cut:
				dst.Close()
				return
			case blackhole:
				// dropped
			default:
				p.mu.Lock()
				d := p.delay
				p.mu.Unlock()
				if d > 0 {
					time.Sleep(d + time.Duration(rand.Int64N(int64(d)/2+1)))
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// readCaller reads the kind byte and the hello frame that open a transport connection, returning the
// bytes read and the caller's node-id ("" if they do not parse: the bytes are forwarded anyway).
func readCaller(br *bufio.Reader) ([]byte, string) {
	kind, err := br.ReadByte()
	if err != nil {
		return nil, ""
	}
	head := []byte{kind}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > 4096 {
		return head, ""
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(br, frame); err != nil {
		return head, ""
	}
	head = binary.AppendUvarint(head, n)
	head = append(head, frame...)
	// hello: [version][uvarint FromID][uvarint len][FromNodeID]...
	if len(frame) < 2 {
		return head, ""
	}
	rest := frame[1:]
	_, k := binary.Uvarint(rest)
	if k <= 0 {
		return head, ""
	}
	rest = rest[k:]
	l, k := binary.Uvarint(rest)
	if k <= 0 || uint64(len(rest)-k) < l {
		return head, ""
	}
	return head, string(rest[k : k+int(l)])
}
