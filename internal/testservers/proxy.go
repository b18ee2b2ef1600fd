package testservers

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a server, and can cut them: after CutAfter(n), a connection that has
// carried n bytes towards the server is closed in both directions, as when the server dies mid-request.
type Proxy struct {
	Addr     string
	backend  string
	cutAfter atomic.Int64 // 0: never
	cuts     atomic.Int64
	ln       net.Listener
	wg       sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards to backend (host:port).
func StartProxy(t testing.TB, backend string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), backend: backend, ln: ln}
	go p.accept()
	t.Cleanup(func() { ln.Close() })
	return p
}

// CutAfter makes connections opened from now on die after n bytes towards the server (0: never).
func (p *Proxy) CutAfter(n int64) { p.cutAfter.Store(n) }

// Cuts is how many connections the proxy has cut.
func (p *Proxy) Cuts() int64 { return p.cuts.Load() }

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c, p.cutAfter.Load())
	}
}

func (p *Proxy) serve(client net.Conn, limit int64) {
	defer client.Close()
	server, err := net.Dial("tcp", p.backend)
	if err != nil {
		return
	}
	defer server.Close()
	go func() {
		io.Copy(client, server)
		client.Close()
	}()
	if limit <= 0 {
		io.Copy(server, client)
		return
	}
	n, _ := io.CopyN(server, client, limit)
	if n == limit {
		p.cuts.Add(1)
	}
}
