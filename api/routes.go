package api

import (
	"net/http"
	"strings"

	"github.com/raftlite/raftlite/auth"
)

// A route is one endpoint of the API: how its path matches, the methods it takes, the permissions it
// needs (all of them, with -auth), its label in the metrics, and its handler. The router, the permission
// check and the metrics all read the one table below; a new endpoint is one more line in it.
type route struct {
	path    string
	prefix  bool     // rqlite matches most paths by prefix: /db/executeXYZ is /db/execute
	methods []string // any other method gets 405; nil takes every method
	perms   []auth.Perm
	label   string // the metrics label; "" is the path
	leveled bool   // the metrics carry the read consistency level
	// enabled, if set, says whether this node serves the route at all (the console, /metrics).
	enabled func(*Service) bool
	serve   func(*Service, http.ResponseWriter, *http.Request, *params)
}

var (
	get     = []string{http.MethodGet}
	post    = []string{http.MethodPost}
	getPost = []string{http.MethodGet, http.MethodPost}
)

func perms(p ...auth.Perm) []auth.Perm { return p }

// routes, matched in order: the first whose path matches serves the request.
var routes = []route{
	{path: "/db/execute", prefix: true, methods: post, perms: perms(auth.Execute), serve: (*Service).handleExecute},
	{path: "/db/query", prefix: true, methods: getPost, perms: perms(auth.Query), leveled: true, serve: (*Service).handleQuery},
	{path: "/db/request", prefix: true, methods: post, perms: perms(auth.Query, auth.Execute), leveled: true, serve: (*Service).handleRequest},
	{path: "/db/backup", prefix: true, methods: get, perms: perms(auth.Backup), serve: (*Service).handleBackup},
	{path: "/db/load", prefix: true, methods: post, perms: perms(auth.Load), serve: (*Service).handleLoad},
	{path: "/db/changes", methods: get, perms: perms(auth.Query), serve: (*Service).handleChanges},
	{path: "/db/sql", prefix: true, methods: getPost, perms: perms(auth.Query), serve: (*Service).handleSQL},
	{path: "/boot", methods: post, perms: perms(auth.Load), serve: (*Service).handleBoot},
	{path: "/snapshot", methods: post, perms: perms(auth.Snapshot), serve: (*Service).handleSnapshot},
	{path: "/reap", methods: post, perms: perms(auth.Snapshot), serve: (*Service).handleReap},
	{path: "/remove", prefix: true, methods: []string{http.MethodDelete}, perms: perms(auth.Remove), serve: (*Service).handleRemove},
	{path: "/status", prefix: true, methods: get, perms: perms(auth.Status), serve: (*Service).handleStatus},
	{path: "/nodes", prefix: true, methods: get, perms: perms(auth.Status), serve: (*Service).handleNodes},
	{path: "/leader", methods: getPost, perms: perms(auth.LeaderOps), serve: (*Service).handleLeader},
	{path: "/readyz", prefix: true, methods: get, perms: perms(auth.Ready), serve: (*Service).handleReadyz},
	{path: "/licenses", methods: get, perms: perms(auth.Status), serve: (*Service).handleLicenses},
	{path: "/debug/vars", perms: perms(auth.Status), label: "/debug", serve: (*Service).handleVars},
	{path: "/debug/pprof", prefix: true, perms: perms(auth.Status), label: "/debug", serve: (*Service).handlePprof},
	{path: "/metrics", methods: get, perms: perms(auth.Status), enabled: hasMetrics, serve: (*Service).handleMetrics},
	{path: "/", label: "/console", enabled: hasConsole, serve: redirectTo("/console/", http.StatusFound)},
	{path: "/console", perms: perms(auth.UI), enabled: hasConsole, serve: redirectTo("/console/", http.StatusMovedPermanently)},
	{path: "/console/", prefix: true, perms: perms(auth.UI), label: "/console", enabled: hasConsole, serve: (*Service).handleConsole},
}

// routeFor is the route that serves path on this node, or nil.
func (s *Service) routeFor(path string) *route {
	for i := range routes {
		rt := &routes[i]
		if (path == rt.path || (rt.prefix && strings.HasPrefix(path, rt.path))) && (rt.enabled == nil || rt.enabled(s)) {
			return rt
		}
	}
	return nil
}

// allows reports whether the route takes the method.
func (rt *route) allows(method string) bool {
	if rt.methods == nil {
		return true
	}
	for _, m := range rt.methods {
		if m == method {
			return true
		}
	}
	return false
}

// metricsLabel is the route's label in the metrics; requests to no route are "other", so that a client
// cannot create series.
func (rt *route) metricsLabel() string {
	switch {
	case rt == nil:
		return "other"
	case rt.label != "":
		return rt.label
	}
	return rt.path
}

func hasMetrics(s *Service) bool { return s.metrics != nil }
func hasConsole(s *Service) bool { return s.console != nil }

func redirectTo(path string, code int) func(*Service, http.ResponseWriter, *http.Request, *params) {
	return func(_ *Service, w http.ResponseWriter, r *http.Request, _ *params) { http.Redirect(w, r, path, code) }
}

func (s *Service) handleMetrics(w http.ResponseWriter, r *http.Request, _ *params) {
	s.metrics.Handler().ServeHTTP(w, r)
}

func (s *Service) handleConsole(w http.ResponseWriter, r *http.Request, _ *params) {
	s.console.ServeHTTP(w, r)
}
