package main

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/raftlite/raftlite/disco"
	"github.com/raftlite/raftlite/store"
)

// discoverySetup is -disco-mode's discovery: what the node's start uses, its /status section, and, for
// the key-value modes, the reporter the leader runs.
type discoverySetup struct {
	discovery *store.Discovery
	status    func() any
	kv        *disco.KV // nil for the DNS modes
}

// loadDiscovery reads -disco-config for -disco-mode (nil without a mode). Mistakes stop the node at start.
func loadDiscovery(cfg *config, nodeID, raftAdv, httpURL string, log *slog.Logger) (*discoverySetup, error) {
	if cfg.discoMode == "" {
		return nil, nil
	}
	raw := disco.ReadConfig(cfg.discoConfig)
	self := disco.Self{ID: nodeID, APIAddr: httpURL, Addr: raftAdv}
	var out discoverySetup
	switch cfg.discoMode {
	case disco.ModeDNS, disco.ModeDNSSRV:
		_, portText, _ := net.SplitHostPort(cfg.raftAddr)
		port, _ := strconv.Atoi(portText)
		d, err := disco.NewDNS(cfg.discoMode, raw, port)
		if err != nil {
			return nil, fmt.Errorf("failed to start discovery service: %w", err)
		}
		out.discovery = &store.Discovery{Lookup: d.Lookup}
		out.status = func() any { return d.Status() }
	case disco.ModeEtcd, disco.ModeConsul:
		var kv *disco.KV
		var err error
		if cfg.discoMode == disco.ModeEtcd {
			kv, err = disco.NewEtcd(raw, cfg.discoKey, self, log)
		} else {
			kv, err = disco.NewConsul(raw, cfg.discoKey, self, log)
		}
		if err != nil {
			return nil, fmt.Errorf("failed to start discovery service: %w", err)
		}
		out.discovery = &store.Discovery{Registry: kv}
		out.status = func() any { return kv.Status() }
		out.kv = kv
	}
	return &out, nil
}
