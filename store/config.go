package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/raftlite/raftlite/cdc"
	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/extension"
	"github.com/raftlite/raftlite/nodecall"
	"github.com/raftlite/raftlite/transport"
)

// Discovery finds the cluster of a node that starts without data (package cluster's, which see).
type Discovery = cluster.Discovery

// Config describes one node.
type Config struct {
	DataDir  string
	NodeID   string // the user-facing id (-node-id); defaults to RaftAddr
	RaftAddr string // advertised Raft address (-raft-adv-addr, else -raft-addr)
	HTTPAddr string // advertised HTTP address, host:port
	HTTPS    bool   // the HTTP API is served over TLS
	Listener net.Listener
	// NewTransport, if set, makes the node's transport instead of package transport on Listener (tests).
	NewTransport func(raftID uint64, h transport.Handler) (Transport, error)
	Dial         transport.Dialer
	// ResolveHTTP asks the node whose HTTP API is at base (http://host:port) for its Raft address, to
	// resolve a -join target given as an HTTP address.
	ResolveHTTP func(ctx context.Context, base string) (string, error)

	// Auth checks the credentials that internal calls carry (nil: -auth not given, everything allowed).
	Auth nodecall.Authorizer
	// JoinAs are the credentials this node presents when it joins a cluster (-join-as).
	JoinAs *command.Credentials
	// ObserveFsync, if set, is told how long each durable write of the Raft log took (for metrics).
	ObserveFsync func(time.Duration)

	Voter                  bool     // false: join as a non-voting read replica (-raft-non-voter)
	Join                   []string // addresses to join through: HTTP (http://host:port, host:port) or Raft
	JoinAttempts           int
	JoinInterval           time.Duration
	BootstrapExpect        int
	BootstrapExpectTimeout time.Duration
	// Discovery, if set, finds the cluster of a node without data instead of Join (-disco-mode).
	Discovery *Discovery
	// ReapTimeout and ReapReadOnlyTimeout: the leader removes a voter, or a non-voter, not heard from for
	// that long (-raft-reap-node-timeout, -raft-reap-read-only-node-timeout; 0: never).
	ReapTimeout, ReapReadOnlyTimeout time.Duration

	SnapshotThreshold uint64        // entries between compactions (-raft-snap)
	SnapshotInterval  time.Duration // how often to check (-raft-snap-int)
	TrailingLogs      uint64        // entries kept behind a compaction for slow followers

	HeartbeatTimeout time.Duration // -raft-heartbeat-timeout: followers hear from the leader 10x per period
	ElectionTimeout  time.Duration // -raft-election-timeout

	// AutoRestore, if set, restores a node with no data from a backup (-auto-restore).
	AutoRestore *AutoRestore
	// Extensions are the SQLite extensions every connection loads (-extensions-path); nil for none.
	Extensions *extension.Set

	ForeignKeys bool
	// MaxResultBytes bounds the rows one read may hold in memory (db.Options.MaxResultBytes).
	MaxResultBytes int64
	// ApplyStepLimit (DefaultApplyStepLimit if 0) bounds the SQLite instructions of each write this node proposes as leader; it travels
	// in the entry, so every replica applies the same bound (-apply-step-limit; 0: db.DefaultApplyStepLimit).
	ApplyStepLimit int64
	// CDC, if set, captures row changes and delivers them (-cdc-config); CDCOut is the stdout endpoint.
	CDC    *cdc.Config
	CDCOut io.Writer
	// SlowApply: a statement of a committed entry that runs this long is logged (-apply-slow-threshold; 0: never).
	SlowApply time.Duration
	// RemoveOnShutdown: leave the cluster on graceful shutdown (-raft-cluster-remove-shutdown).
	RemoveOnShutdown bool
	// RecoverForce lets a peers.json recovery go ahead although a majority of the voters is reachable
	// (-raft-recover-force).
	RecoverForce bool
	// BootstrapGrace is how long a node with no data and nothing to join waits for an existing cluster to
	// contact it (which means it is a wiped member coming back) before it bootstraps a new cluster.
	BootstrapGrace time.Duration
	Version        string
	Logger         *slog.Logger
	// RaftLogger receives etcd raft's own messages, at its own level (-raft-log-level); Logger if nil.
	RaftLogger *slog.Logger
}

// DefaultApplyStepLimit is Config.ApplyStepLimit's default: about three minutes of SQLite work.
const DefaultApplyStepLimit = db.DefaultApplyStepLimit

func (c *Config) setDefaults() error {
	if c.DataDir == "" {
		return errors.New("no data directory")
	}
	if c.RaftAddr == "" {
		return errors.New("no Raft address")
	}
	if c.NodeID == "" {
		c.NodeID = c.RaftAddr
	}
	if c.Listener == nil && c.NewTransport == nil {
		return errors.New("no Raft listener")
	}
	if c.JoinAttempts <= 0 {
		c.JoinAttempts = 5
	}
	if c.JoinInterval <= 0 {
		c.JoinInterval = 3 * time.Second
	}
	if c.BootstrapExpectTimeout <= 0 {
		c.BootstrapExpectTimeout = 120 * time.Second
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = 10 * time.Second
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = c.SnapshotThreshold + c.SnapshotThreshold/4
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = time.Second
	}
	if c.ElectionTimeout <= 0 {
		c.ElectionTimeout = time.Second
	}
	if c.BootstrapGrace <= 0 {
		c.BootstrapGrace = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BootstrapExpect > 0 && !c.Voter {
		return errors.New("bootstrapping only applicable to voting nodes")
	}
	return nil
}

// ticks converts the timeouts to raft's logical clock: a tick of tickInterval, heartbeats every
// HeartbeatTimeout/10, and an election after ElectionTimeout without a leader.
func (c *Config) ticks() (tick time.Duration, heartbeat, election int) {
	tick = c.HeartbeatTimeout / 10
	tick = min(max(tick, 10*time.Millisecond), 100*time.Millisecond)
	heartbeat = max(1, int(c.HeartbeatTimeout/10/tick))
	election = max(heartbeat+1, int(c.ElectionTimeout/tick))
	return tick, heartbeat, election
}

func (c *Config) String() string {
	return fmt.Sprintf("node %s raft %s http %s", c.NodeID, c.RaftAddr, c.HTTPAddr)
}

func (c *Config) dbPath() string  { return filepath.Join(c.DataDir, "db.sqlite") }
func (c *Config) snapDir() string { return filepath.Join(c.DataDir, "snapshots") }

// httpURL is the advertised HTTP API with its scheme, or "" if the node serves none.
func (c *Config) httpURL() string {
	if c.HTTPAddr == "" {
		return ""
	}
	if c.HTTPS {
		return "https://" + c.HTTPAddr
	}
	return "http://" + c.HTTPAddr
}
