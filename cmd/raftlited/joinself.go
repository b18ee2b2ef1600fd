package main

import (
	"context"
	"net"
	"slices"
	"strings"
	"time"
)

// joinsItself reports whether a -join target names this node: one of its own HTTP or Raft addresses
// (bound or advertised), however it is spelled: a host name or an IP address, with or without a scheme.
func joinsItself(target string, own ...string) bool {
	target = strings.TrimPrefix(strings.TrimPrefix(target, "http://"), "https://")
	target, _, _ = strings.Cut(target, "/")
	thost, tport, err := net.SplitHostPort(target)
	if err != nil {
		return false
	}
	tips := lookup(thost)
	for _, addr := range own {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port != tport {
			continue
		}
		if host == thost {
			return true
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			// Bound to every interface: any address of this machine reaches it.
			if slices.ContainsFunc(tips, isLocalIP) {
				return true
			}
			continue
		}
		if slices.ContainsFunc(lookup(host), func(ip net.IP) bool { return slices.ContainsFunc(tips, ip.Equal) }) {
			return true
		}
	}
	return false
}

// lookup resolves a host name (or parses an IP address); it gives nothing if the name does not resolve.
func lookup(host string) []net.IP {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips
}

// isLocalIP reports whether ip belongs to one of this machine's interfaces.
func isLocalIP(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
