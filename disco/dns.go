package disco

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DNSConfig is -disco-config for the dns and dns-srv modes.
type DNSConfig struct {
	Name    string `json:"name"`    // the name to look up (default "rqlite")
	Port    int    `json:"port"`    // dns: the Raft port paired with each address (default: this node's)
	Service string `json:"service"` // dns-srv: the service, looked up as _<service>._tcp.<name> (default "rqlite")
	// Server, raftlite's own, is a DNS server (host:port) to ask instead of the system's resolver.
	Server string `json:"server"`
}

// DNS looks up the Raft addresses of the nodes a DNS name lists.
type DNS struct {
	mode     string
	cfg      DNSConfig
	resolver *net.Resolver

	mu          sync.Mutex
	lastAddrs   []string
	lastContact time.Time
	lastErr     string
}

// NewDNS reads the configuration of a DNS mode; raftPort is the port of this node's -raft-addr.
func NewDNS(mode string, raw []byte, raftPort int) (*DNS, error) {
	cfg := DNSConfig{Name: "rqlite", Service: "rqlite", Port: raftPort}
	if err := decode(mode, raw, &cfg); err != nil {
		return nil, fmt.Errorf("error reading DNS configuration: %w", err)
	}
	if cfg.Name == "" {
		return nil, fmt.Errorf("error reading DNS configuration: \"name\" is empty")
	}
	if mode == ModeDNS && (cfg.Port <= 0 || cfg.Port > 65535) {
		return nil, fmt.Errorf("error reading DNS configuration: \"port\" %d is not a port", cfg.Port)
	}
	d := &DNS{mode: mode, cfg: cfg, resolver: net.DefaultResolver}
	if cfg.Server != "" {
		if _, _, err := net.SplitHostPort(cfg.Server); err != nil {
			return nil, fmt.Errorf("error reading DNS configuration: \"server\" %q is not host:port", cfg.Server)
		}
		d.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, cfg.Server)
		}}
	}
	return d, nil
}

// srvName is what dns-srv asks for.
func (d *DNS) srvName() string { return "_" + d.cfg.Service + "._tcp." + d.cfg.Name + "." }

// Lookup returns the Raft addresses (ip:port) the name lists now, sorted.
func (d *DNS) Lookup(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var addrs []string
	var err error
	if d.mode == ModeDNSSRV {
		addrs, err = d.lookupSRV(ctx)
	} else {
		var ips []net.IPAddr
		if ips, err = d.resolver.LookupIPAddr(ctx, d.cfg.Name); err == nil {
			for _, ip := range ips {
				addrs = append(addrs, net.JoinHostPort(ip.IP.String(), strconv.Itoa(d.cfg.Port)))
			}
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.lastErr = err.Error()
		return nil, fmt.Errorf("look up %s: %w", d.describe(), err)
	}
	d.lastAddrs, d.lastContact, d.lastErr = addrs, time.Now(), ""
	return addrs, nil
}

func (d *DNS) lookupSRV(ctx context.Context) ([]string, error) {
	_, srvs, err := d.resolver.LookupSRV(ctx, d.cfg.Service, "tcp", d.cfg.Name)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, srv := range srvs {
		ips, err := d.resolver.LookupIPAddr(ctx, srv.Target)
		if err != nil {
			continue // a target without addresses yet (a pod still starting) is left out
		}
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip.IP.String(), strconv.Itoa(int(srv.Port))))
		}
	}
	return addrs, nil
}

func (d *DNS) describe() string {
	if d.mode == ModeDNSSRV {
		return "SRV " + d.srvName()
	}
	return d.cfg.Name
}

// Status is /status's disco section: rqlite's keys, including dns-srv's "dns_name:" (with its colon, as
// rqlite spells it; "dns_name" is there too), and the last result.
func (d *DNS) Status() map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]any{"mode": d.mode, "name": d.cfg.Name}
	if d.mode == ModeDNSSRV {
		out["service"] = d.cfg.Service
		out["dns_name:"] = d.srvName()
		out["dns_name"] = d.srvName()
	} else {
		out["port"] = d.cfg.Port
	}
	if d.cfg.Server != "" {
		out["server"] = d.cfg.Server
	}
	if d.lastAddrs != nil {
		out["last_addresses"] = d.lastAddrs
	}
	if !d.lastContact.IsZero() {
		out["last_contact"] = d.lastContact.UTC().Format(time.RFC3339Nano)
	}
	if d.lastErr != "" {
		out["last_error"] = d.lastErr
	}
	return out
}
