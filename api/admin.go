package api

import (
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlite/raftlite/backup"
	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/rewrite"
	"github.com/raftlite/raftlite/store"
)

// handleSnapshot serves POST /snapshot: compact the log now (200), or 204 if nothing was applied since.
func (s *Service) handleSnapshot(w http.ResponseWriter, r *http.Request, p *params) {
	if p.trailingLogs < 0 {
		http.Error(w, "trailing_logs must not be negative", http.StatusBadRequest)
		return
	}
	counters.Add("user_snapshots", 1)
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	err := s.store.Snapshot(ctx, uint64(p.trailingLogs))
	switch {
	case errors.Is(err, store.ErrNothingNew):
		w.WriteHeader(http.StatusNoContent)
	case err != nil:
		failed(w, err, "", http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// handleReap serves POST /reap. raftlite keeps no store of old snapshots to reap (the database file is
// the snapshot); it checkpoints the WAL, which is the part of reaping that applies here.
func (s *Service) handleReap(w http.ResponseWriter, r *http.Request, p *params) {
	counters.Add("user_reaps", 1)
	if err := s.store.Checkpoint(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, p, http.StatusOK, []byte(`{"snapshots_reaped":0,"wals_checkpointed":1}`))
}

// handleLeader serves /leader: GET describes the leader; POST asks it to step down, to the node named in a
// JSON body {"id":"..."} if there is one, waiting for the handover with ?wait.
func (s *Service) handleLeader(w http.ResponseWriter, r *http.Request, p *params) {
	if r.Method == http.MethodGet {
		leader, ok := s.store.Leader()
		if !ok {
			http.Error(w, "leader not found", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := s.requestContext(r, p)
		defer cancel()
		for _, m := range s.store.Members() {
			if m.NodeID == leader.NodeID {
				b, _ := json.Marshal(s.probeNodes(ctx, []store.Member{m})[0])
				writeJSON(w, p, http.StatusOK, b)
				return
			}
		}
		http.Error(w, "leader not found", http.StatusServiceUnavailable)
		return
	}
	var target struct {
		ID string `json:"id"`
	}
	if r.Header.Get("Content-Type") == "application/json" && r.ContentLength != 0 {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		if err := json.Unmarshal(body, &target); err != nil {
			http.Error(w, `invalid JSON body: send {"id":"<node-id>"} to hand leadership to that node, or no body to let the leader choose`, http.StatusBadRequest)
			return
		}
	}
	if p.redirect && !s.store.IsLeader() {
		s.redirect(w, r)
		return
	}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	servedBy := s.servedByLocal()
	if !s.store.IsLeader() {
		servedBy = s.servedByLeader() // the store passes the step-down on to the leader
	}
	if err := s.store.Stepdown(ctx, target.ID, p.wait); err != nil {
		failed(w, err, "stepdown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Rqlite-Served-By", servedBy)
	w.WriteHeader(http.StatusOK)
}

// handleSQL serves /db/sql: how each statement would be rewritten before it enters the
// log, and whether SQLite can compile it. Nothing is executed.
func (s *Service) handleSQL(w http.ResponseWriter, r *http.Request, p *params) {
	var stmts []*command.Statement
	if r.Method == http.MethodGet {
		if !p.hasQ {
			http.Error(w, "query not specified", http.StatusBadRequest)
			return
		}
		stmts = []*command.Statement{{Sql: p.q}}
	} else {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		var err error
		if stmts, err = parseStatements(body, false); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	env := newEnv()
	opts := rewrite.Options{Random: !p.norwrandom, Time: !p.norwtime}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	e := encoder{}
	e.buf = append(e.buf, `{"results":[`...)
	for i, st := range stmts {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = append(e.buf, `{"original":`...)
		e.str(st.Sql)
		out, changed := rewrite.Rewrite(st.Sql, opts, time.UnixMilli(env.NowUnixMs).UTC(), envRand(env))
		if changed {
			e.buf = append(e.buf, `,"rewritten":`...)
			e.str(out)
		}
		if err := s.store.CheckSQL(ctx, out); err != nil {
			e.buf = append(e.buf, `,"error":`...)
			e.str(err.Error())
		}
		e.buf = append(e.buf, '}')
	}
	e.buf = append(e.buf, "]}"...)
	writeJSON(w, p, http.StatusOK, e.buf)
}

// counters are this process's expvar counters (the "http" map of /debug/vars).
var counters = expvar.NewMap("http")

// varsFor is the Service whose store /debug/vars shows in its "store" and "cluster" maps (a process runs
// one); publishVarsOnce registers those maps, present (zeros) before any Service exists.
var (
	varsFor         atomic.Pointer[Service]
	publishVarsOnce sync.Once
)

func publishStoreVars(s *Service) {
	varsFor.Store(s)
	publishVarsOnce.Do(func() {
		counters := func() store.Counters {
			if svc := varsFor.Load(); svc != nil {
				return svc.store.Counters()
			}
			return store.Counters{}
		}
		expvar.Publish("store", expvar.Func(func() any {
			c := counters()
			out := backup.StoreVars()
			out["num_snapshots"] = int64(c.Snapshots)
			out["num_restores"] = int64(c.Restores)
			out["num_ignored_joins"] = int64(c.IgnoredJoins)
			out["num_removed_before_joins"] = int64(c.RemovedBeforeJoins)
			out["num_reaped"] = int64(c.Reaped)
			return out
		}))
		expvar.Publish("cluster", expvar.Func(func() any {
			return map[string]int64{"num_join_req": int64(counters().JoinRequests)}
		}))
	})
}

// handleVars serves /debug/vars: Go's expvar JSON, or one top-level entry of it with ?key=.
func (s *Service) handleVars(w http.ResponseWriter, r *http.Request, p *params) {
	setJSON(w)
	if p.key == "" {
		expvar.Handler().ServeHTTP(w, r)
		return
	}
	v := expvar.Get(p.key)
	if v == nil {
		writeJSON(w, p, http.StatusOK, []byte("{}"))
		return
	}
	writeJSON(w, p, http.StatusOK, []byte(fmt.Sprintf("{\n%q: %s\n}\n", p.key, v.String())))
}

// handlePprof serves Go's profiler under /debug/pprof.
func (s *Service) handlePprof(w http.ResponseWriter, r *http.Request, _ *params) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Index(w, r)
	}
}

const licenses = `raftlite is built on these works, under their licences:
go.etcd.io/raft/v3 (Apache License 2.0), github.com/mattn/go-sqlite3 (MIT), SQLite (public domain),
google.golang.org/protobuf (BSD 3-Clause), github.com/aws/aws-sdk-go-v2 and github.com/aws/smithy-go
(Apache License 2.0), the Go standard library (BSD 3-Clause).
`

func (s *Service) handleLicenses(w http.ResponseWriter, r *http.Request, _ *params) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(licenses))
}

// lastBackup is when this node last served a backup (last_backup_time in /status).
var lastBackup atomic.Value
