package api

import (
	"net/http"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/store"
)

// handleRequest serves /db/request: reads and writes in one JSON body. A request that
// only reads (as SQLite judges each statement) is served like /db/query, at any level; anything else goes
// through the log, each statement run as a query or a write as SQLite judges it.
func (s *Service) handleRequest(w http.ResponseWriter, r *http.Request, p *params) {
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
	level := parseLevel(p.level)
	env := newEnv()
	if prepare(stmts, p, env, true) {
		s.respond(w, p, start, store.Response{Error: "disallowed pragma"})
		return
	}
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
	s.write(w, r, p, req, env, start)
}
