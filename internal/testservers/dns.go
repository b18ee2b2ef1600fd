package testservers

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNS is a DNS server on loopback (UDP and TCP) answering A and SRV questions from records a test sets
// and changes as it goes.
type DNS struct {
	Addr string

	mu  sync.Mutex
	a   map[string][]net.IP
	srv map[string][]*dns.SRV
}

// StartDNS starts the server with no records.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{a: map[string][]net.IP{}, srv: map[string][]*dns.SRV{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: d}
	tcp := &dns.Server{Listener: ln, Handler: d}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return d
}

// SetA makes name resolve to ips (none: the name does not exist).
func (d *DNS) SetA(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var list []net.IP
	for _, ip := range ips {
		list = append(list, net.ParseIP(ip))
	}
	d.a[dns.Fqdn(name)] = list
}

// SRVTarget is one SRV record's target and port.
type SRVTarget struct {
	Host string
	Port uint16
}

// SetSRV sets the SRV records of _service._tcp.name.
func (d *DNS) SetSRV(service, name string, targets ...SRVTarget) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := "_" + service + "._tcp." + dns.Fqdn(name)
	var list []*dns.SRV
	for _, tg := range targets {
		list = append(list, &dns.SRV{Hdr: dns.RR_Header{Name: q, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 1},
			Priority: 10, Weight: 10, Port: tg.Port, Target: dns.Fqdn(tg.Host)})
	}
	d.srv[q] = list
}

func (d *DNS) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	d.mu.Lock()
	for _, q := range r.Question {
		name := strings.ToLower(q.Name)
		switch q.Qtype {
		case dns.TypeA:
			for _, ip := range d.a[name] {
				if ip.To4() != nil {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: ip})
				}
			}
		case dns.TypeSRV:
			for _, s := range d.srv[name] {
				m.Answer = append(m.Answer, s)
			}
		}
		_, knownA := d.a[name]
		_, knownSRV := d.srv[name]
		if !knownA && !knownSRV {
			m.Rcode = dns.RcodeNameError
		}
	}
	d.mu.Unlock()
	w.WriteMsg(m)
}
