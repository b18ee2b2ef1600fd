package api

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/rewrite"
	"github.com/raftlite/raftlite/sqlpolicy"
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

// prepare makes the one analysis of each statement (package sqlpolicy) and uses it for everything on the
// way in: the SQL policy may refuse the whole request (refused: the caller answers "disallowed pragma");
// unless noparse, non-deterministic functions are rewritten to literals (unless norwrandom/norwtime, or
// rewriteSQL is false) and a statement that returns rows is marked.
func prepare(stmts []*command.Statement, p *params, env db.Env, rewriteSQL bool) (refused bool) {
	analyses := make([][]sqlpolicy.Statement, len(stmts))
	for i, st := range stmts {
		analyses[i] = sqlpolicy.Analyze(st.Sql)
		if sqlpolicy.Refused(analyses[i]) {
			return true
		}
	}
	if p.noparse {
		return false
	}
	now := time.UnixMilli(env.NowUnixMs).UTC()
	rng := envRand(env)
	opts := rewrite.Options{Random: !p.norwrandom, Time: !p.norwtime}
	for i, st := range stmts {
		analysis := analyses[i]
		if n := len(analysis); n > 0 {
			st.Returning = analysis[n-1].Returning
		}
		if rewriteSQL {
			pieces := make([]sqlscan.Stmt, len(analysis))
			for k, a := range analysis {
				pieces[k] = a.Stmt
			}
			st.Sql, _ = rewrite.Statements(st.Sql, pieces, opts, now, rng)
		}
	}
	return false
}

func (s *Service) handleExecute(w http.ResponseWriter, r *http.Request, p *params) {
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
	start := time.Now()
	req := &command.Request{Mode: command.Mode_MODE_EXECUTE, Statements: stmts, Transaction: p.transaction, DbTimeoutNs: int64(p.dbTimeout)}
	env := newEnv()
	if prepare(stmts, p, env, true) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
	s.write(w, r, p, req, env, start)
}

func (s *Service) handleQuery(w http.ResponseWriter, r *http.Request, p *params) {
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
	level := parseLevel(p.level)
	env := newEnv()
	// Only a strong read goes through the log, so only then must its SQL be deterministic.
	if prepare(stmts, p, env, level == store.LevelStrong) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
	s.read(w, r, p, req, level, env, start)
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
