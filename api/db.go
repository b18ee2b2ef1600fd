package api

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/rewrite"
	"github.com/raftlite/raftlite/sqlscan"
	"github.com/raftlite/raftlite/store"
)

// newEnv is the deterministic environment of a write received here: this node's clock (which the
// rewritten SQL also used) and a fresh random seed.
func newEnv() db.Env {
	var b [8]byte
	crand.Read(b[:])
	return db.Env{NowUnixMs: time.Now().UnixMilli(), Seed: binary.LittleEndian.Uint64(b[:])}
}

// envRand is the generator the rewriter draws literals from for a request with this environment.
func envRand(env db.Env) *rand.Rand { return rand.New(rand.NewPCG(env.Seed, env.Seed^0x5deece66d)) }

// prepare applies the SQL processor to statements (unless noparse): non-deterministic functions are
// rewritten to literals (unless norwrandom/norwtime, or rewrite is false) and RETURNING is detected.
func prepare(stmts []*command.Statement, p *params, env db.Env, rewriteSQL bool) {
	if p.noparse {
		return
	}
	now := time.UnixMilli(env.NowUnixMs).UTC()
	rng := envRand(env)
	opts := rewrite.Options{Random: !p.norwrandom, Time: !p.norwtime}
	for _, st := range stmts {
		if rewriteSQL {
			st.Sql, _ = rewrite.Rewrite(st.Sql, opts, now, rng)
		}
		pieces := sqlscan.Split(st.Sql)
		if n := len(pieces); n > 0 {
			info := sqlscan.Analyze(pieces[n-1].Text)
			st.Returning = info.Returning || info.Kind == sqlscan.Explain
		}
	}
}

// disallowedPragma reports a statement that would change how this node stores data, which only the node
// itself may decide (reference §3.5), or (beyond rqlite) a connection setting that changes what SQL means:
// on the writer it would last until a restart on one replica and not on another, and on a pooled reader it
// would change the answers of other clients.
func disallowedPragma(stmts []*command.Statement) bool {
	for _, st := range stmts {
		for _, piece := range sqlscan.Split(st.Sql) {
			_, name, setting, ok := sqlscan.Pragma(piece.Text)
			if !ok {
				continue
			}
			switch strings.ToLower(name) {
			case "wal_checkpoint":
				return true
			case "journal_mode", "wal_autocheckpoint", "synchronous", "query_only", "writable_schema",
				"recursive_triggers", "case_sensitive_like", "reverse_unordered_selects", "legacy_alter_table",
				"ignore_check_constraints", "defer_foreign_keys", "trusted_schema", "automatic_index",
				"soft_heap_limit", "hard_heap_limit", "locking_mode", "mmap_size", "temp_store_directory",
				"data_store_directory", "threads", "busy_timeout", "cell_size_check", "short_column_names",
				"full_column_names", "count_changes", "empty_result_callbacks":
				if setting {
					return true
				}
			}
		}
	}
	return false
}

func (s *Service) handleExecute(w http.ResponseWriter, r *http.Request, p *params) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if p.queue {
		s.handleQueued(w, r, p, body)
		return
	}
	stmts, err := parseStatements(body, isPlainText(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &command.Request{Mode: command.Mode_MODE_EXECUTE, Statements: stmts, Transaction: p.transaction, DbTimeoutNs: int64(p.dbTimeout)}
	s.write(w, r, p, req)
}

// write runs a request through the log: locally on the leader, forwarded to it from elsewhere.
func (s *Service) write(w http.ResponseWriter, r *http.Request, p *params, req *command.Request) {
	start := time.Now()
	if disallowedPragma(req.Statements) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
	env := newEnv()
	prepare(req.Statements, p, env, true)
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	resp, err := s.store.Execute(ctx, req, env)
	servedBy := s.servedByLocal()
	if errors.Is(err, store.ErrNotLeader) {
		if p.redirect {
			s.redirect(w, r)
			return
		}
		resp, err = s.store.Forward(ctx, &command.ForwardRequest{Request: req, NowUnixMs: env.NowUnixMs, Seed: env.Seed})
		servedBy = s.servedByLeader()
	}
	if s.requestFailed(w, p, start, err) {
		return
	}
	w.Header().Set("X-Rqlite-Served-By", servedBy)
	s.respond(w, p, start, resp)
}

func (s *Service) handleQuery(w http.ResponseWriter, r *http.Request, p *params) {
	if !allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	start := time.Now()
	var stmts []*command.Statement
	if r.Method == http.MethodGet {
		if !p.hasQ {
			s.respond(w, p, start, store.Response{})
			return
		}
		stmts = []*command.Statement{{Sql: p.q}}
	} else {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		var err error
		if stmts, err = parseStatements(body, isPlainText(r)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	req := &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts, Transaction: p.transaction,
		DbTimeoutNs: int64(p.dbTimeout), QualifyColumns: p.qualifyColumns}
	if disallowedPragma(stmts) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
	level := parseLevel(p.level)
	env := newEnv()
	// Only a strong read goes through the log, so only then must its SQL be deterministic.
	prepare(stmts, p, env, level == store.LevelStrong)
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	if level == store.LevelLinearizable {
		timeout := 10 * time.Second
		if p.hasLinearizableTimeout {
			timeout = p.linearizableTimeout
		}
		var lcancel context.CancelFunc
		ctx, lcancel = context.WithTimeout(ctx, timeout)
		defer lcancel()
	}
	opts := store.ReadOptions{Level: level, Freshness: p.freshness, FreshnessStrict: p.freshnessStrict, MinIndex: p.minIndex}
	resp, err := s.store.Query(ctx, req, opts, env)
	servedBy := s.servedByLocal()
	if errors.Is(err, store.ErrNotLeader) {
		if p.redirect {
			s.redirect(w, r)
			return
		}
		resp, err = s.store.Forward(ctx, &command.ForwardRequest{Request: req, Read: true, Level: int32(level),
			FreshnessNs: int64(p.freshness), FreshnessStrict: p.freshnessStrict, NowUnixMs: env.NowUnixMs, Seed: env.Seed})
		servedBy = s.servedByLeader()
	}
	if s.requestFailed(w, p, start, err) {
		return
	}
	w.Header().Set("X-Rqlite-Served-By", servedBy)
	s.respond(w, p, start, resp)
}

func parseLevel(level string) store.Level {
	switch level {
	case "none":
		return store.LevelNone
	case "linearizable":
		return store.LevelLinearizable
	case "strong":
		return store.LevelStrong
	case "auto":
		return store.LevelAuto
	}
	return store.LevelWeak
}

func isPlainText(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain")
}

// requestFailed writes the response for a request the store could not serve; it returns false if err
// is nil. No leader means 503; anything else is reported inside a 200, as rqlite does.
func (s *Service) requestFailed(w http.ResponseWriter, p *params, start time.Time, err error) bool {
	if err == nil {
		return false
	}
	switch {
	case deniedByLeader(w, err):
	case errors.Is(err, store.ErrNoLeader):
		http.Error(w, "leader not found", http.StatusServiceUnavailable)
	case errors.Is(err, store.ErrStaleRead):
		s.respond(w, p, start, store.Response{Error: "stale read"})
	default:
		s.respond(w, p, start, store.Response{Error: errorText(err)})
	}
	return true
}

// errorText is the message of a store or remote error as a client should read it.
func errorText(err error) string {
	switch {
	case errors.Is(err, store.ErrNotOpen):
		return "store not ready"
	case errors.Is(err, store.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout: " + err.Error()
	}
	return err.Error()
}

func (s *Service) respond(w http.ResponseWriter, p *params, start time.Time, resp store.Response) {
	e := encoder{associative: p.associative, blobArray: p.blobArray, timings: p.timings}
	index := uint64(0)
	if p.raftIndex {
		index = resp.RaftIndex
	}
	e.response(resp.Results, resp.Error, time.Since(start).Seconds(), 0, index)
	writeJSON(w, p, http.StatusOK, e.buf)
}

// redirect answers 301 to the same path and query on the leader.
func (s *Service) redirect(w http.ResponseWriter, r *http.Request) {
	leader, ok := s.store.Leader()
	if !ok || leader.HTTPURL == "" {
		http.Error(w, "leader not found", http.StatusServiceUnavailable)
		return
	}
	loc := leader.HTTPURL + r.URL.Path
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, loc, http.StatusMovedPermanently)
}

func (s *Service) servedByLocal() string { return s.store.HTTPAddr() }

func (s *Service) servedByLeader() string {
	if l, ok := s.store.Leader(); ok {
		return strings.TrimPrefix(strings.TrimPrefix(l.HTTPURL, "http://"), "https://")
	}
	return ""
}
