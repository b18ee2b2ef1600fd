package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/raftlite/raftlite/auth"
)

// Config configures the HTTP service.
type Config struct {
	Store   Store
	Version string
	// MaxBodyBytes bounds request bodies; larger ones get 413. 0 means 64 MiB.
	MaxBodyBytes int64
	// MaxLoadBytes bounds /db/load bodies (a whole database). 0 means 1 GiB.
	MaxLoadBytes int64
	// BodyIdleTimeout ends a request whose body stops arriving for this long (a client trickling bytes must
	// not hold a handler for ever). 0 means 30 s.
	BodyIdleTimeout time.Duration
	Queue           QueueConfig
	Logger          *slog.Logger
	// Auth checks every request's credentials (nil: -auth not given, everything allowed).
	Auth *auth.Store
	// Metrics, if set, records every request and serves /metrics.
	Metrics Metrics
	// Console, if set, serves the web console under /console/ (and / redirects there).
	Console http.Handler
	// AllowOrigin, if set, is sent as Access-Control-Allow-Origin (-http-allow-origin).
	AllowOrigin string
	// StatusSections adds sections to /status, each computed when asked for (auto_backups, say).
	StatusSections map[string]func() any
}

// Service is the HTTP API of one node.
type Service struct {
	store Store
	auth  *auth.Store
	// allowOrigin is -http-allow-origin ("" sends no Access-Control-Allow-Origin).
	allowOrigin string
	metrics     Metrics
	console     http.Handler
	version     string
	maxBody     int64
	maxLoad     int64
	bodyIdle    time.Duration
	queue       *queue
	queueMu     sync.Mutex
	log         *slog.Logger
	start       time.Time
	sections    map[string]func() any
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if cfg.MaxLoadBytes <= 0 {
		cfg.MaxLoadBytes = 1 << 30
	}
	if cfg.BodyIdleTimeout <= 0 {
		cfg.BodyIdleTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "unknown"
	}
	s := &Service{store: cfg.Store, auth: cfg.Auth, allowOrigin: cfg.AllowOrigin, metrics: cfg.Metrics, console: cfg.Console, version: cfg.Version, maxBody: cfg.MaxBodyBytes, maxLoad: cfg.MaxLoadBytes,
		bodyIdle: cfg.BodyIdleTimeout, log: cfg.Logger, start: time.Now(), sections: cfg.StatusSections}
	s.queue = newQueue(s, cfg.Queue)
	publishCDCVars(s)
	publishStoreVars(s)
	return s
}

// Close stops the service's background work: the write queue flushes what it holds (until ctx ends).
func (s *Service) Close(ctx context.Context) { s.queue.close(ctx) }

// ServeHTTP dispatches as rqlite does: CORS preflight first, then the permission check, then query
// parameter validation, then the route (404 for none, 405 for a method it does not take).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.routeFor(r.URL.Path)
	if s.metrics == nil {
		s.serveHTTP(w, r, rt)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	p := s.serveHTTP(sw, r, rt)
	s.metrics.ObserveRequest(rt.metricsLabel(), methodLabel(r.Method), sw.code, levelLabel(rt, p), time.Since(start))
}

// serveHTTP serves a request and returns its parsed parameters (nil if it never got that far).
func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request, rt *route) *params {
	h := w.Header()
	h.Set("X-Rqlite-Version", s.version)
	h.Set("Access-Control-Allow-Methods", "OPTIONS, GET, POST")
	if s.auth != nil {
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("WWW-Authenticate", `Basic realm="rqlite"`)
	} else {
		h.Set("Access-Control-Allow-Headers", "Content-Type")
	}
	if s.allowOrigin != "" {
		h.Set("Access-Control-Allow-Origin", s.allowOrigin)
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if crossSiteForm(r) {
		http.Error(w, "cross-origin request refused: send JSON (application/json) or call from the same origin", http.StatusForbidden)
		return nil
	}
	var needs []auth.Perm
	if rt != nil {
		needs = rt.perms
	}
	r, ok := s.authorize(w, r, needs)
	if !ok {
		return nil
	}
	p, err := parseParams(r.URL)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil
	}
	switch {
	case rt == nil:
		w.WriteHeader(http.StatusNotFound)
	case !rt.allows(r.Method):
		w.WriteHeader(http.StatusMethodNotAllowed)
	default:
		rt.serve(s, w, r, p)
	}
	return p
}

func setJSON(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
}

// readBody reads the whole body, answering 413 if it is larger than the limit.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	return s.readBodyLimit(w, r, s.maxBody)
}

func (s *Service) readBodyLimit(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := io.ReadAll(s.body(w, r, limit))
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

// body reads the request body, at most limit bytes, giving up when it stops arriving for bodyIdle.
func (s *Service) body(w http.ResponseWriter, r *http.Request, limit int64) io.Reader {
	if sw, ok := w.(*statusWriter); ok {
		// MaxBytesReader tells the server to close the connection after a 413 only through the server's
		// own ResponseWriter.
		w = sw.ResponseWriter
	}
	return &progressReader{r: http.MaxBytesReader(w, r.Body, limit), rc: http.NewResponseController(w), idle: s.bodyIdle}
}

// progressReader moves the connection's read deadline forward as the body arrives: the body may take as
// long as it needs, provided it keeps coming. Moving a deadline costs a timer update, so it is moved only
// once a quarter of the idle time has passed since the last move (a stalled body is cut after 3/4 to 4/4 of
// it).
type progressReader struct {
	r     io.Reader
	rc    *http.ResponseController
	idle  time.Duration
	moved time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	if now := time.Now(); now.Sub(p.moved) >= p.idle/4 {
		_ = p.rc.SetReadDeadline(now.Add(p.idle))
		p.moved = now
	}
	return p.r.Read(b)
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
