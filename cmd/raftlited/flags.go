package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/raftlite/raftlite/disco"
	"github.com/raftlite/raftlite/store"
)

// config holds raftlited's command line: rqlited's flag names and defaults.
type config struct {
	dataDir string

	nodeID      string
	httpAddr    string
	httpAdvAddr string
	raftAddr    string
	raftAdvAddr string

	join                   string
	joinAttempts           int
	joinInterval           time.Duration
	bootstrapExpect        int
	bootstrapExpectTimeout time.Duration
	nonVoter               bool

	raftSnap              uint64
	raftSnapInt           time.Duration
	raftElectionTimeout   time.Duration
	raftHeartbeatTimeout  time.Duration
	raftLogLevel          string
	clusterRemoveShutdown bool
	recoverForce          bool
	fk                    bool

	allowOrigin string
	maxBody     int64
	maxLoad     int64
	// maxResult bounds a read's result rows in memory (-query-max-result; 0: no limit).
	maxResult int64
	// applyStepLimit bounds each write's SQLite instructions, identically on every node (-apply-step-limit);
	// applySlow is when a statement being applied is logged (-apply-slow-threshold).
	applyStepLimit int64
	applySlow      time.Duration
	// cdcConfig is -cdc-config: stdout, an http(s) URL, or a JSON file.
	cdcConfig string
	// autoBackup and autoRestore are the JSON files of -auto-backup and -auto-restore.
	autoBackup, autoRestore string
	// discoMode, discoKey and discoConfig are -disco-mode, -disco-key and -disco-config.
	discoMode, discoKey, discoConfig string
	// extensionsPath is -extensions-path: SQLite extensions to load (comma-separated).
	extensionsPath string
	// reapTimeout and reapReadOnlyTimeout are -raft-reap-node-timeout and -raft-reap-read-only-node-timeout.
	reapTimeout, reapReadOnlyTimeout time.Duration

	writeQueueCapacity  int
	writeQueueBatchSize int
	writeQueueTimeout   time.Duration
	writeQueueTx        bool
	logLevel            string
	logFormat           string
	showVersion         bool

	securityFlags
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("raftlited", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: raftlited [flags] <data directory>\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.showVersion, "version", false, "Show version information and exit")
	fs.StringVar(&c.nodeID, "node-id", "", "Unique ID for node. If not set, set to advertised Raft address")
	fs.StringVar(&c.httpAddr, "http-addr", "localhost:4001", "HTTP server bind address")
	fs.StringVar(&c.httpAdvAddr, "http-adv-addr", "", "Advertised HTTP address. If not set, same as HTTP server bind address")
	fs.StringVar(&c.raftAddr, "raft-addr", "localhost:4002", "Raft communication bind address")
	fs.StringVar(&c.raftAdvAddr, "raft-adv-addr", "", "Advertised Raft communication address. If not set, same as Raft bind address")
	fs.StringVar(&c.join, "join", "", "Comma-delimited list of nodes (HTTP or Raft addresses) through which a cluster can be joined")
	fs.IntVar(&c.joinAttempts, "join-attempts", 5, "Number of join attempts to make")
	fs.DurationVar(&c.joinInterval, "join-interval", 3*time.Second, "Period between join attempts")
	fs.IntVar(&c.bootstrapExpect, "bootstrap-expect", 0, "Minimum number of nodes required for a bootstrap")
	fs.DurationVar(&c.bootstrapExpectTimeout, "bootstrap-expect-timeout", 120*time.Second, "Maximum time for bootstrap process")
	fs.StringVar(&c.discoMode, "disco-mode", "", "Choose clustering discovery mode: dns, dns-srv, etcd-kv or consul-kv (see docs/deployment.md). If not set, no node discovery is performed")
	fs.StringVar(&c.discoKey, "disco-key", "rqlite", "Key prefix for cluster discovery service (etcd-kv and consul-kv), so that several clusters can share one")
	fs.StringVar(&c.discoConfig, "disco-config", "", "Set discovery config, or path to a JSON file of it")
	fs.BoolVar(&c.nonVoter, "raft-non-voter", false, "Configure as non-voting node (read replica)")
	fs.Uint64Var(&c.raftSnap, "raft-snap", 8192, "Number of outstanding log entries which triggers Raft snapshot and log compaction")
	fs.DurationVar(&c.raftSnapInt, "raft-snap-int", 10*time.Second, "Snapshot threshold check interval")
	fs.DurationVar(&c.raftElectionTimeout, "raft-election-timeout", time.Second, "Raft election timeout")
	fs.DurationVar(&c.raftHeartbeatTimeout, "raft-heartbeat-timeout", time.Second, "Raft heartbeat timeout: followers hear from the leader ten times per period")
	fs.StringVar(&c.raftLogLevel, "raft-log-level", "WARN", "Minimum log level for Raft module (ERROR, WARN, INFO, DEBUG)")
	fs.DurationVar(&c.reapTimeout, "raft-reap-node-timeout", 0, "Time after which the leader removes a voting node it has not heard from (0: never). A removed node that returns with its data rejoins through -join or discovery")
	fs.DurationVar(&c.reapReadOnlyTimeout, "raft-reap-read-only-node-timeout", 0, "Time after which the leader removes a non-voting node it has not heard from (0: never)")
	fs.BoolVar(&c.clusterRemoveShutdown, "raft-cluster-remove-shutdown", false, "Remove this node from the cluster when it shuts down gracefully")
	fs.BoolVar(&c.recoverForce, "raft-recover-force", false, "Recover with <data>/raft/peers.json even when a majority of the voters is reachable (splits the cluster: for experts)")
	fs.BoolVar(&c.fk, "fk", false, "Enable SQLite foreign key constraints")
	fs.StringVar(&c.extensionsPath, "extensions-path", "", "Comma-delimited list of paths to directories, zipfiles, or tar.gz files containing SQLite extensions (every node must load the same ones)")
	fs.StringVar(&c.allowOrigin, "http-allow-origin", "", "Value of the Access-Control-Allow-Origin header (CORS); none if empty")
	fs.Int64Var(&c.maxBody, "http-max-body", 64<<20, "Largest request body accepted, in bytes (larger ones get 413)")
	fs.Int64Var(&c.maxLoad, "http-max-load", 1<<30, "Largest /db/load body accepted, in bytes")
	fs.Int64Var(&c.maxResult, "query-max-result", 256<<20, "Largest result a read request may build in memory, in bytes (about); larger ones fail with an error. 0: no limit")
	fs.Int64Var(&c.applyStepLimit, "apply-step-limit", store.DefaultApplyStepLimit, "Most SQLite virtual machine steps one write request may run (about 50 million a second on 2 cores); a write that needs more fails, at the same step on every node. The leader's value applies")
	fs.DurationVar(&c.applySlow, "apply-slow-threshold", 5*time.Second, "Log a statement of a committed write that runs this long or longer (every write waits behind it). 0: never")
	fs.StringVar(&c.cdcConfig, "cdc-config", "", "Change data capture: an http(s) URL to POST changes to, \"stdout\", \"pull\" (the pull feed only), or the path of a JSON configuration file")
	fs.StringVar(&c.autoBackup, "auto-backup", "", "Path of a JSON file configuring automatic backups to S3, Google Cloud Storage or a directory (see docs/backup.md)")
	fs.StringVar(&c.autoRestore, "auto-restore", "", "Path of a JSON file configuring the restore of a node with no data from a backup in S3, Google Cloud Storage or a directory (see docs/backup.md)")
	fs.IntVar(&c.writeQueueCapacity, "write-queue-capacity", 1024, "Write queue capacity (requests)")
	fs.IntVar(&c.writeQueueBatchSize, "write-queue-batch-size", 128, "Write queue batch size (requests per log entry)")
	fs.DurationVar(&c.writeQueueTimeout, "write-queue-timeout", 50*time.Millisecond, "Time after which a partial write queue batch is sent")
	fs.BoolVar(&c.writeQueueTx, "write-queue-tx", false, "Use a transaction when applying a batch of queued writes")
	fs.StringVar(&c.logLevel, "log-level", "INFO", "Minimum level of the node's own log (ERROR, WARN, INFO, DEBUG)")
	fs.StringVar(&c.logFormat, "log-format", "text", "Log format: text (key=value) or json, one line per event")
	c.securityFlags.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.showVersion {
		return c, nil
	}
	switch fs.NArg() {
	case 0:
		return nil, errors.New("missing required argument: data directory (usage: raftlited [flags] <data directory>)")
	case 1:
	default:
		return nil, fmt.Errorf("arguments after data directory (%s) are not accepted (%s)", fs.Arg(0), strings.Join(fs.Args()[1:], " "))
	}
	dir, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return nil, fmt.Errorf("data directory %s: %w", fs.Arg(0), err)
	}
	c.dataDir = dir
	return c, c.validate()
}

// validate applies rqlited's checks, with its messages.
func (c *config) validate() error {
	for _, a := range []string{c.httpAddr, c.httpAdvAddr, c.raftAddr, c.raftAdvAddr} {
		if strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://") {
			return errors.New("HTTP options should not include protocol (http:// or https://)")
		}
	}
	for name, a := range map[string]string{"-http-addr": c.httpAddr, "-raft-addr": c.raftAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%s %q is not a host:port address: %v", name, a, err)
		}
	}
	if c.httpAddr == c.raftAddr {
		return errors.New("HTTP and Raft addresses must differ")
	}
	if c.httpAdvAddr != "" && c.httpAdvAddr == c.raftAdvAddr {
		return errors.New("advertised HTTP and Raft addresses must differ")
	}
	// The advertised address is what other nodes and clients dial: the bind address when no -*-adv-addr
	// is given, and an address that means "every interface" reaches nothing from elsewhere.
	if err := routable("HTTP", "http", cmp.Or(c.httpAdvAddr, c.httpAddr)); err != nil {
		return err
	}
	if err := routable("Raft", "raft", cmp.Or(c.raftAdvAddr, c.raftAddr)); err != nil {
		return err
	}
	if c.cdcConfig != "" && c.nonVoter {
		return errors.New("CDC cannot be enabled on non-voting nodes")
	}
	if c.autoRestore != "" && c.join != "" && c.bootstrapExpect == 0 {
		return errors.New("auto-restoring cannot be used when joining a cluster (a joining node gets the cluster's data; to start a new cluster from a backup, give -auto-restore to its first node, or to every node with -bootstrap-expect)")
	}
	if c.bootstrapExpect > 0 && c.nonVoter {
		return errors.New("bootstrapping only applicable to voting nodes")
	}
	if c.reapTimeout < 0 || c.reapReadOnlyTimeout < 0 {
		return errors.New("-raft-reap-node-timeout and -raft-reap-read-only-node-timeout must not be negative")
	}
	if c.reapTimeout > 0 && c.reapTimeout < 10*c.raftElectionTimeout {
		return fmt.Errorf("-raft-reap-node-timeout %s is too short: a node that misses a few elections is not gone (use at least 10 election timeouts, %s)", c.reapTimeout, 10*c.raftElectionTimeout)
	}
	if err := c.validateDisco(); err != nil {
		return err
	}
	if c.bootstrapExpect < 0 {
		return errors.New("-bootstrap-expect must not be negative")
	}
	if c.joinAttempts < 1 {
		return errors.New("-join-attempts must be at least 1")
	}
	if c.writeQueueCapacity < 1 || c.writeQueueBatchSize < 1 || c.writeQueueTimeout <= 0 {
		return errors.New("-write-queue-capacity, -write-queue-batch-size and -write-queue-timeout must be positive")
	}
	if c.raftSnap == 0 {
		return errors.New("-raft-snap must be at least 1")
	}
	if c.raftSnapInt <= 0 || c.raftElectionTimeout <= 0 || c.raftHeartbeatTimeout <= 0 {
		return errors.New("-raft-snap-int, -raft-election-timeout and -raft-heartbeat-timeout must be positive")
	}
	if c.maxBody <= 0 || c.maxLoad <= 0 || c.maxResult < 0 {
		return errors.New("-http-max-body and -http-max-load must be positive, and -query-max-result not negative")
	}
	if c.applyStepLimit < 1000 || c.applySlow < 0 {
		return errors.New("-apply-step-limit must be at least 1000, and -apply-slow-threshold not negative")
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("-log-format %q: use text or json", c.logFormat)
	}
	if err := c.securityFlags.validate(); err != nil {
		return err
	}
	if _, err := parseLevel(c.raftLogLevel); err != nil {
		return fmt.Errorf("-raft-log-level: %w", err)
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	return nil
}

// routable refuses an advertised address that others cannot dial: an unspecified IP (0.0.0.0, ::) or
// no host at all. The message is rqlited's, naming the flags that fix it.
func routable(what, flagPrefix, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("advertised %s address %q is not a host:port address, specify it via -%s-adv-addr", what, addr, flagPrefix)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		shown := host
		if shown == "" {
			shown = "no host"
		}
		return fmt.Errorf("advertised %s address is not routable (%s), specify it via -%s-addr or -%s-adv-addr", what, shown, flagPrefix, flagPrefix)
	}
	return nil
}

// parseLevel accepts the four level names only (slog would also take "ERROR+4", which would silence
// even the errors a node reports before it exits).
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToUpper(s) {
	case "ERROR":
		return slog.LevelError, nil
	case "WARN", "WARNING":
		return slog.LevelWarn, nil
	case "INFO":
		return slog.LevelInfo, nil
	case "DEBUG":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("unknown level %q (use ERROR, WARN, INFO or DEBUG)", s)
}

// joinAddrs splits -join into addresses.
func (c *config) joinAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// validateDisco applies rqlited's checks of the discovery flags, with its messages.
func (c *config) validateDisco() error {
	switch c.discoMode {
	case "":
		return nil
	case disco.ModeDNS, disco.ModeDNSSRV:
		if c.bootstrapExpect == 0 && !c.nonVoter {
			return fmt.Errorf("bootstrap-expect value required when using %s with a voting node", c.discoMode)
		}
	case disco.ModeEtcd, disco.ModeConsul:
		if c.bootstrapExpect > 0 {
			return fmt.Errorf("bootstrapping not applicable when using %s", c.discoMode)
		}
	default:
		return disco.ErrUnknownMode
	}
	if c.join != "" {
		return errors.New("disco mode cannot be used when also explicitly joining a cluster")
	}
	if c.discoKey == "" || strings.ContainsAny(c.discoKey, " \t\n") {
		return fmt.Errorf("-disco-key %q: give a key prefix without spaces", c.discoKey)
	}
	return nil
}
