package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/store"
)

// The path of a request that runs SQL, the same for /db/execute, /db/query, /db/request and /db/load:
// decode the statements (the handler), check them against the SQL policy and make them deterministic
// (prepare), serve them here or on the leader (viaLeader), encode the answer (respond).

// viaLeader serves a request that the store may refuse with store.ErrNotLeader: local runs it here; on
// a refusal the client is sent to the leader (with ?redirect: done is true, the answer is written) or
// forward runs it there. servedBy names the node that served it. This is the one place where a node
// decides between serving, redirecting and forwarding.
func (s *Service) viaLeader(w http.ResponseWriter, r *http.Request, p *params, local, forward func() error) (servedBy string, done bool, err error) {
	if err = local(); !errors.Is(err, store.ErrNotLeader) {
		return s.servedByLocal(), false, err
	}
	if p != nil && p.redirect {
		s.redirect(w, r)
		return "", true, nil
	}
	return s.servedByLeader(), false, forward()
}

// write runs a prepared request through the log: on the leader, or forwarded to it.
func (s *Service) write(w http.ResponseWriter, r *http.Request, p *params, req *command.Request, env db.Env, start time.Time) {
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	var resp store.Response
	servedBy, done, err := s.viaLeader(w, r, p,
		func() (err error) { resp, err = s.store.Execute(ctx, req, env); return err },
		func() (err error) {
			resp, err = s.store.Forward(ctx, &command.ForwardRequest{Request: req, NowUnixMs: env.NowUnixMs, Seed: env.Seed})
			return err
		})
	s.answer(w, p, start, servedBy, done, resp, err)
}

// read serves a prepared read-only request at level: here, if the level allows, or on the leader.
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
	var resp store.Response
	servedBy, done, err := s.viaLeader(w, r, p,
		func() (err error) { resp, err = s.store.Query(ctx, req, opts, env); return err },
		func() (err error) {
			resp, err = s.store.Forward(ctx, &command.ForwardRequest{Request: req, Read: true, Level: int32(level),
				FreshnessNs: int64(p.freshness), FreshnessStrict: p.freshnessStrict, NowUnixMs: env.NowUnixMs, Seed: env.Seed})
			return err
		})
	s.answer(w, p, start, servedBy, done, resp, err)
}

// answer encodes the outcome of a request that ran SQL.
func (s *Service) answer(w http.ResponseWriter, p *params, start time.Time, servedBy string, done bool, resp store.Response, err error) {
	if done || s.requestFailed(w, p, start, err) {
		return
	}
	w.Header().Set("X-Rqlite-Served-By", servedBy)
	s.respond(w, p, start, resp)
}

// requestFailed writes the response for a request that ran SQL and that the store could not serve; it
// returns false if err is nil. As in rqlite, a missing leader is a 503, refused credentials a 401, and
// anything else is reported inside a 200.
func (s *Service) requestFailed(w http.ResponseWriter, p *params, start time.Time, err error) bool {
	if err == nil {
		return false
	}
	switch {
	case deniedByLeader(w, err):
	case errors.Is(err, store.ErrNoLeader):
		http.Error(w, "leader not found", http.StatusServiceUnavailable)
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

// failed answers an administrative request (load, boot, backup, removal, step-down, snapshot) that failed:
// refused credentials are a 401, a missing leader a 503 with rqlite's words, an error with a code gets its
// code's status (errcode.HTTPStatus), a timeout or a leader out of reach a 503, and anything else fallback,
// with what (if any) before the message. The status follows the error's code or type, never its text.
func failed(w http.ResponseWriter, err error, what string, fallback int) {
	if deniedByLeader(w, err) {
		return
	}
	if errors.Is(err, store.ErrNoLeader) {
		http.Error(w, "leader not found", http.StatusServiceUnavailable)
		return
	}
	status := fallback
	var netErr net.Error
	switch code := errcode.Of(err); {
	case code != errcode.Unknown:
		status = errcode.HTTPStatus(code)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr):
		// The request's time ran out, or the leader could not be reached to pass it on: the same request
		// may succeed later.
		status = http.StatusServiceUnavailable
	}
	msg := err.Error()
	if what != "" {
		msg = what + ": " + msg
	}
	http.Error(w, msg, status)
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
