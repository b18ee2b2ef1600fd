package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/store"
)

// handleRequest serves /db/request (reference §1.4): reads and writes in one JSON body. A request that
// only reads (as SQLite judges each statement) is served like /db/query, at any level; anything else goes
// through the log, each statement run as a query or a write as SQLite judges it.
func (s *Service) handleRequest(w http.ResponseWriter, r *http.Request, p *params) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	stmts, err := parseStatements(body, false)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	start := time.Now()
	req := &command.Request{Mode: command.Mode_MODE_REQUEST, Statements: stmts, Transaction: p.transaction,
		DbTimeoutNs: int64(p.dbTimeout), QualifyColumns: p.qualifyColumns}
	if disallowedPragma(stmts) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
	level := parseLevel(p.level)
	env := newEnv()
	prepare(stmts, p, env, true)
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	readOnly, err := s.store.ReadOnly(ctx, req)
	if err != nil {
		s.requestFailed(w, p, start, err)
		return
	}
	if readOnly {
		s.read(w, r, p, req, level, env, start)
		return
	}
	s.writeRequest(w, r, p, req, env, start)
}

// read serves a read-only request at level, here or through the leader.
func (s *Service) read(w http.ResponseWriter, r *http.Request, p *params, req *command.Request, level store.Level, env db.Env, start time.Time) {
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

// writeRequest runs a request through the log: on the leader, or forwarded to it.
func (s *Service) writeRequest(w http.ResponseWriter, r *http.Request, p *params, req *command.Request, env db.Env, start time.Time) {
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
