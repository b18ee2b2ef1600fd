package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/raftlite/raftlite/store"
)

// Config configures the HTTP service.
type Config struct {
	Store   *store.Store
	Version string
	// MaxBodyBytes bounds request bodies; larger ones get 413. 0 means 64 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Service is the HTTP API of one node.
type Service struct {
	store   *store.Store
	version string
	maxBody int64
	log     *slog.Logger
	start   time.Time
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "unknown"
	}
	return &Service{store: cfg.Store, version: cfg.Version, maxBody: cfg.MaxBodyBytes, log: cfg.Logger, start: time.Now()}
}

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
	case strings.HasPrefix(path, "/db/backup"):
		s.handleBackup(w, r, p)
	case strings.HasPrefix(path, "/status"):
		s.handleStatus(w, r, p)
	case strings.HasPrefix(path, "/nodes"):
		s.handleNodes(w, r, p)
	case strings.HasPrefix(path, "/readyz"):
		s.handleReadyz(w, r, p)
	case strings.HasPrefix(path, "/remove"):
		s.handleRemove(w, r, p)
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
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body too large (limit %d bytes)", s.maxBody), http.StatusRequestEntityTooLarge)
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
