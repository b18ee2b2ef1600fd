// Command raftlited runs one node of a raftlite cluster: SQLite replicated with Raft, served over
// rqlite's HTTP API.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/backup"
	"github.com/raftlite/raftlite/cdc"
	"github.com/raftlite/raftlite/console"
	"github.com/raftlite/raftlite/extension"
	"github.com/raftlite/raftlite/metrics"
	"github.com/raftlite/raftlite/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "v0.1.0"

func main() {
	// SQLite's 'localtime' modifier converts with the C library's time zone. Every replica must compute
	// the same value, whatever the zone of its machine, so the process works in UTC.
	os.Setenv("TZ", "UTC")
	// Everything the node writes (the database, its WAL, the Raft log, snapshots) is for its owner only.
	restrictFileModes()
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "raftlited: %v\n", err)
		return 2
	}
	if cfg.showVersion {
		sqlv, _, _ := sqlite3.Version()
		fmt.Fprintf(stderr, "raftlited %s %s %s %s sqlite%s\n", version, runtime.GOOS, runtime.GOARCH, runtime.Version(), sqlv)
		return 0
	}
	level, _ := parseLevel(cfg.logLevel)
	raftLevel, _ := parseLevel(cfg.raftLogLevel)
	log := newLogger(stderr, cfg.logFormat, level)
	// etcd raft's own messages have their own level: a separate handler, so that neither level lowers
	// the other.
	raftLog := newLogger(stderr, cfg.logFormat, raftLevel)
	if err := serve(cfg, log, raftLog); err != nil {
		log.Error("raftlited stopped", "node", nodeIDOr(cfg.nodeID, cmp.Or(cfg.raftAdvAddr, cfg.raftAddr)), "err", err)
		return 1
	}
	return 0
}

func serve(cfg *config, log, raftLog *slog.Logger) error {
	sec, err := cfg.securityFlags.load()
	if err != nil {
		return err
	}
	var cdcCfg *cdc.Config
	if cfg.cdcConfig != "" {
		if !store.CaptureSupported {
			return errors.New("-cdc-config: this raftlited was built without SQLite's pre-update hook (build it with make build, or go build -tags sqlite_preupdate_hook)")
		}
		if cdcCfg, err = cdc.ParseFlag(cfg.cdcConfig); err != nil {
			return err
		}
	}
	exts, err := extension.Prepare(cfg.extensionsPath, cfg.dataDir)
	if err != nil {
		return err
	}
	backups, err := loadBackupConfig(cfg.autoBackup)
	if err != nil {
		return err
	}
	restore, err := loadRestoreConfig(cfg.autoRestore)
	if err != nil {
		return err
	}
	raftLn, err := net.Listen("tcp", cfg.raftAddr)
	if err != nil {
		return fmt.Errorf("listen on -raft-addr %s: %w", cfg.raftAddr, err)
	}
	httpLn, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		raftLn.Close()
		return fmt.Errorf("listen on -http-addr %s: %w", cfg.httpAddr, err)
	}
	raftAdv := advertised(cfg.raftAdvAddr, cfg.raftAddr, raftLn)
	httpAdv := advertised(cfg.httpAdvAddr, cfg.httpAddr, httpLn)
	if sec.nodeTLS != nil {
		raftLn = tls.NewListener(raftLn, sec.nodeTLS)
	}
	if sec.httpTLS != nil {
		httpLn = tls.NewListener(httpLn, sec.httpTLS)
	}
	if cfg.join != "" && cfg.bootstrapExpect == 0 {
		for _, j := range cfg.joinAddrs() {
			if joinsItself(j, raftAdv, httpAdv, cfg.raftAddr, cfg.httpAddr) {
				raftLn.Close()
				httpLn.Close()
				return errors.New("node cannot join with itself unless bootstrapping")
			}
		}
	}

	// Every line names this node, once: a node's lines are told apart when several log to one place.
	log = log.With("node", nodeIDOr(cfg.nodeID, raftAdv))
	httpScheme := "http://"
	if sec.httpTLS != nil {
		httpScheme = "https://"
	}
	discovery, err := loadDiscovery(cfg, nodeIDOr(cfg.nodeID, raftAdv), raftAdv, httpScheme+httpAdv, log)
	if err != nil {
		raftLn.Close()
		httpLn.Close()
		return err
	}
	var storeDiscovery *store.Discovery
	if discovery != nil {
		storeDiscovery = discovery.discovery
	}
	raftLog = raftLog.With("node", nodeIDOr(cfg.nodeID, raftAdv))
	if sec.nodeSystemRoots {
		log.Warn("node TLS verifies the other nodes against the system's root certificates (no -node-ca-cert): any certificate a public CA issued, for any name, is accepted as a node's; give -node-ca-cert, or -node-verify-common-name, to admit only your nodes")
	}
	m := metrics.New()
	st, err := store.Open(store.Config{
		DataDir: cfg.dataDir, NodeID: cfg.nodeID, RaftAddr: raftAdv, HTTPAddr: httpAdv, Listener: raftLn,
		ObserveFsync: m.ObserveFsync,
		HTTPS:        sec.httpTLS != nil, Dial: sec.nodeDial, ResolveHTTP: resolveHTTP(sec.httpClient, sec.joinAs), Auth: authorizer(sec.auth), JoinAs: sec.joinAs,
		Voter: !cfg.nonVoter, Join: cfg.joinAddrs(), JoinAttempts: cfg.joinAttempts, JoinInterval: cfg.joinInterval,
		BootstrapExpect: cfg.bootstrapExpect, BootstrapExpectTimeout: cfg.bootstrapExpectTimeout, Discovery: storeDiscovery,
		ReapTimeout: cfg.reapTimeout, ReapReadOnlyTimeout: cfg.reapReadOnlyTimeout,
		SnapshotThreshold: cfg.raftSnap, SnapshotInterval: cfg.raftSnapInt,
		HeartbeatTimeout: cfg.raftHeartbeatTimeout, ElectionTimeout: cfg.raftElectionTimeout,
		ForeignKeys: cfg.fk, MaxResultBytes: cmp.Or(cfg.maxResult, -1), ApplyStepLimit: cfg.applyStepLimit, SlowApply: cfg.applySlow, CDC: cdcCfg, CDCOut: os.Stdout, RemoveOnShutdown: cfg.clusterRemoveShutdown, RecoverForce: cfg.recoverForce, Version: version,
		AutoRestore: restore, Extensions: exts, Logger: log, RaftLogger: raftLog,
	})
	if err != nil {
		httpLn.Close()
		return err
	}
	m.Watch(st)
	if len(exts.Names) > 0 {
		log.Info("loaded extensions", "names", strings.Join(exts.Names, ", "), "digest", exts.Digest[:12])
	}
	var uploader *backup.Uploader
	statusSections := map[string]func() any{}
	if backups != nil {
		uploader = backup.NewUploader(backups.cfg, backups.storage, st, cfg.dataDir, log)
		statusSections["auto_backups"] = func() any { return uploader.Status() }
	}
	if discovery != nil {
		statusSections["disco"] = discovery.status
	}
	svc := api.New(api.Config{StatusSections: statusSections, Store: st, Version: version, MaxBodyBytes: cfg.maxBody, MaxLoadBytes: cfg.maxLoad, Logger: log, Auth: sec.auth,
		Metrics: m, Console: console.Handler(), AllowOrigin: cfg.allowOrigin,
		Queue: api.QueueConfig{Capacity: cfg.writeQueueCapacity, BatchSize: cfg.writeQueueBatchSize,
			Timeout: cfg.writeQueueTimeout, Tx: cfg.writeQueueTx}})
	// Every request's context descends from requestsCtx: cancelling it stops what still runs at shutdown.
	requestsCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return requestsCtx },
		Handler:           svc,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(httpLn) }()
	log.Info("raftlited started", "version", version, "http", httpAdv, "raft", raftAdv, "data", cfg.dataDir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startErr := make(chan error, 1)
	go func() { startErr <- st.Start(ctx) }()

	var runErr error
	select {
	case err := <-startErr:
		if err != nil {
			runErr = fmt.Errorf("start node: %w", err)
			break
		}
		log.Info("node is running")
		if discovery != nil && discovery.kv != nil {
			go discovery.kv.Report(ctx, st.IsLeader)
		}
		if uploader != nil {
			go uploader.Run(ctx)
			log.Info("auto-backups enabled", "destination", backups.storage.Destination(backups.storage.Name()), "interval", backups.cfg.Interval.String())
		}
		select {
		case <-ctx.Done():
		case err := <-st.Fatal():
			runErr = err
		case err := <-httpDone:
			runErr = fmt.Errorf("HTTP server: %w", err)
		}
	case <-ctx.Done():
	case err := <-httpDone:
		runErr = fmt.Errorf("HTTP server: %w", err)
	}
	log.Info("shutting down")
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), httpDrainTimeout)
	defer cancelDrain()
	if err := srv.Shutdown(drainCtx); err != nil {
		// A long query must not hold the node up: the database closes only once its reads have ended.
		log.Warn("cancelling requests still running at shutdown", "after", httpDrainTimeout)
		cancelRequests()
		// They answer once their queries are interrupted; then only a client that stops reading is left.
		answerCtx, cancelAnswer := context.WithTimeout(context.Background(), time.Second)
		defer cancelAnswer()
		if srv.Shutdown(answerCtx) != nil {
			srv.Close()
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svc.Close(shutdownCtx)
	if err := st.Close(shutdownCtx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// httpDrainTimeout is how long requests under way at shutdown may take to finish before they are
// cancelled.
const httpDrainTimeout = 5 * time.Second

// authorizer hands the store a nil interface, not a nil *auth.Store, when -auth is not given.
func authorizer(a *auth.Store) store.Authorizer {
	if a == nil {
		return nil
	}
	return a
}

// advertised is the address to tell others: the -*-adv-addr flag if given, else the bind address as
// written, except that a :0 port is replaced by the one the system chose.
func advertised(advFlag, bindFlag string, ln net.Listener) string {
	if advFlag != "" {
		return advFlag
	}
	if _, port, err := net.SplitHostPort(bindFlag); err == nil && port != "0" {
		return bindFlag
	}
	return ln.Addr().String()
}

func nodeIDOr(id, raftAddr string) string {
	if id != "" {
		return id
	}
	return raftAddr
}
