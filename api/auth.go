package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/store"
)

// authorize checks the caller's HTTP Basic credentials against what the request needs. An allowed request
// comes back carrying the credentials in its context, so that whatever this node passes on to the leader
// is checked there again.
func (s *Service) authorize(w http.ResponseWriter, r *http.Request, needs []auth.Perm) (*http.Request, bool) {
	if !s.auth.Enabled() {
		return r, true
	}
	user, pass, _ := r.BasicAuth()
	for _, perm := range needs {
		if !s.auth.Allow(user, pass, perm) && !(perm == auth.Status && joinerLookup(r, user, pass, s.auth)) {
			who := "credentials required"
			if user != "" {
				who = "user " + user + " may not use " + r.URL.Path + " (needs " + string(perm) + "), or the password is wrong"
			}
			unauthorized(w, who)
			return r, false
		}
	}
	return r.WithContext(store.WithCredentials(r.Context(), user, pass)), true
}

// joinerLookup lets a node that may join learn a member's Raft address from its HTTP API (a -join target
// given as an HTTP address), without the status permission.
func joinerLookup(r *http.Request, user, pass string, a *auth.Store) bool {
	if r.URL.Path != "/status" || r.URL.Query().Get("key") != "store.addr" {
		return false
	}
	for _, p := range []auth.Perm{auth.Join, auth.JoinReadOnly, auth.JoinReadReplica} {
		if a.Allow(user, pass, p) {
			return true
		}
	}
	return false
}

func unauthorized(w http.ResponseWriter, msg string) {
	// The server drains an unread body after the handler; an anonymous caller must not hold the connection
	// by trickling one.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(5 * time.Second))
	w.Header().Set("WWW-Authenticate", `Basic realm="rqlite"`)
	http.Error(w, "unauthorized: "+msg, http.StatusUnauthorized)
}

// deniedByLeader answers 401 when the leader refused the credentials of a request passed on to it.
func deniedByLeader(w http.ResponseWriter, err error) bool {
	if !errors.Is(err, store.ErrUnauthorized) {
		return false
	}
	unauthorized(w, strings.TrimPrefix(err.Error(), store.ErrUnauthorized.Error()+": "))
	return true
}

// crossSiteForm reports a request another web site's page could have made a browser send without asking
// (a form post or a "simple" fetch: not JSON, so no CORS preflight), with the browser's stored
// credentials for this node: a cross-site request forgery. Clients other than browsers send no Origin.
func crossSiteForm(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		return false
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return false // needs a preflight, which grants no cross-origin access
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}
