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
	if disallowedPragma(stmts) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
	env := newEnv()
	prepare(stmts, p, env, true)
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
	if disallowedPragma(stmts) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
	level := parseLevel(p.level)
	env := newEnv()
	// Only a strong read goes through the log, so only then must its SQL be deterministic.
	prepare(stmts, p, env, level == store.LevelStrong)
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
