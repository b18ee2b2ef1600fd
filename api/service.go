package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/raftlite/raftlite/store"
)

// Config configures the HTTP service.
type Config struct {
	Store   *store.Store
	Version string
	// MaxBodyBytes bounds request bodies; larger ones get 413. 0 means 64 MiB.
	MaxBodyBytes int64
	// MaxLoadBytes bounds /db/load bodies (a whole database). 0 means 1 GiB.
	MaxLoadBytes int64
	Queue        QueueConfig
	Logger       *slog.Logger
}

// Service is the HTTP API of one node.
type Service struct {
	store   *store.Store
	version string
	maxBody int64
	maxLoad int64
	queue   *queue
	queueMu sync.Mutex
	log     *slog.Logger
	start   time.Time
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if cfg.MaxLoadBytes <= 0 {
		cfg.MaxLoadBytes = 1 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "unknown"
	}
	s := &Service{store: cfg.Store, version: cfg.Version, maxBody: cfg.MaxBodyBytes, maxLoad: cfg.MaxLoadBytes,
		log: cfg.Logger, start: time.Now()}
	s.queue = newQueue(s, cfg.Queue)
	return s
}

// Close stops the service's background work: the write queue flushes what it holds (until ctx ends).
func (s *Service) Close(ctx context.Context) { s.queue.close(ctx) }

// ServeHTTP dispatches as rqlite does (reference §1.1): CORS preflight first, then query parameter
// validation, then the path.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Rqlite-Version", s.version)
	h.Set("Access-Control-Allow-Methods", "OPTIONS, GET, POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return
	}
	p, err := parseParams(r.URL)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/db/execute"):
		s.handleExecute(w, r, p)
	case strings.HasPrefix(path, "/db/query"):
		s.handleQuery(w, r, p)
	case strings.HasPrefix(path, "/db/request"):
		s.handleRequest(w, r, p)
	case strings.HasPrefix(path, "/db/backup"):
		s.handleBackup(w, r, p)
	case strings.HasPrefix(path, "/db/load"):
		s.handleLoad(w, r, p)
	case strings.HasPrefix(path, "/db/sql"):
		s.handleSQL(w, r, p)
	case path == "/boot":
		s.handleBoot(w, r, p)
	case path == "/snapshot":
		s.handleSnapshot(w, r, p)
	case path == "/reap":
		s.handleReap(w, r, p)
	case strings.HasPrefix(path, "/remove"):
		s.handleRemove(w, r, p)
	case strings.HasPrefix(path, "/status"):
		s.handleStatus(w, r, p)
	case strings.HasPrefix(path, "/nodes"):
		s.handleNodes(w, r, p)
	case path == "/leader":
		s.handleLeader(w, r, p)
	case strings.HasPrefix(path, "/readyz"):
		s.handleReadyz(w, r, p)
	case path == "/licenses":
		s.handleLicenses(w, r)
	case path == "/debug/vars":
		s.handleVars(w, r, p)
	case strings.HasPrefix(path, "/debug/pprof"):
		s.handlePprof(w, r)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func setJSON(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
}

// allow writes 405 unless the method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.WriteHeader(http.StatusMethodNotAllowed)
	return false
}

// readBody reads the whole body, answering 413 if it is larger than the limit.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	return s.readBodyLimit(w, r, s.maxBody)
}

func (s *Service) readBodyLimit(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body too large (limit %d bytes)", limit), http.StatusRequestEntityTooLarge)
			return nil, false
		}
		http.Error(w, "error reading request body: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return b, true
}

func writeJSON(w http.ResponseWriter, p *params, status int, body []byte) {
	if p != nil && p.pretty {
		body = indent(body)
	}
	setJSON(w)
	w.WriteHeader(status)
	w.Write(body)
}

func (s *Service) requestContext(r *http.Request, p *params) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), p.timeout)
}
