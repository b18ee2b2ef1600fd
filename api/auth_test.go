package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/auth"
	"github.com/raftlite/raftlite/console"
	"github.com/raftlite/raftlite/metrics"
)

// endpointPerms is every endpoint with a request that exercises it and the permissions it needs.
var endpointPerms = []struct {
	method, path, body string
	perms              []auth.Perm
}{
	{"POST", "/db/execute", `["INSERT INTO t(v) VALUES (1)"]`, []auth.Perm{auth.Execute}},
	{"POST", "/db/execute?queue", `["INSERT INTO t(v) VALUES (2)"]`, []auth.Perm{auth.Execute}},
	{"GET", "/db/query?q=SELECT+1", "", []auth.Perm{auth.Query}},
	{"POST", "/db/query", `["SELECT 1"]`, []auth.Perm{auth.Query}},
	{"POST", "/db/request", `["SELECT 1"]`, []auth.Perm{auth.Query, auth.Execute}},
	{"GET", "/db/sql?q=SELECT+1", "", []auth.Perm{auth.Query}},
	{"GET", "/db/backup", "", []auth.Perm{auth.Backup}},
	{"POST", "/db/load", "SELECT 1;", []auth.Perm{auth.Load}},
	{"POST", "/boot", "not sqlite", []auth.Perm{auth.Load}},
	{"POST", "/snapshot", "", []auth.Perm{auth.Snapshot}},
	{"POST", "/reap", "", []auth.Perm{auth.Snapshot}},
	{"DELETE", "/remove", `{"id":"nobody"}`, []auth.Perm{auth.Remove}},
	{"GET", "/status", "", []auth.Perm{auth.Status}},
	{"GET", "/nodes", "", []auth.Perm{auth.Status}},
	{"GET", "/debug/vars", "", []auth.Perm{auth.Status}},
	{"GET", "/debug/pprof/cmdline", "", []auth.Perm{auth.Status}},
	{"GET", "/licenses", "", []auth.Perm{auth.Status}},
	{"GET", "/leader", "", []auth.Perm{auth.LeaderOps}},
	{"POST", "/leader", "", []auth.Perm{auth.LeaderOps}},
	{"GET", "/readyz", "", []auth.Perm{auth.Ready}},
	{"GET", "/metrics", "", []auth.Perm{auth.Status}},
	{"GET", "/console/", "", []auth.Perm{auth.UI}},
}

// testCredentials is credentialsFile, parsed.
func testCredentials(t *testing.T) *auth.Store {
	t.Helper()
	creds, err := auth.Parse([]byte(credentialsFile()))
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

func credentialsFile() string {
	var users []string
	for _, p := range []auth.Perm{auth.Execute, auth.Query, auth.Backup, auth.Load, auth.Snapshot, auth.Remove,
		auth.Status, auth.LeaderOps, auth.Ready, auth.Join, auth.UI} {
		users = append(users, fmt.Sprintf(`{"username": "u-%s", "password": "p-%s", "perms": ["%s"]}`, p, p, p))
	}
	users = append(users, `{"username": "admin", "password": "secret", "perms": ["all"]}`,
		`{"username": "qe", "password": "qe", "perms": ["query", "execute"]}`,
		`{"username": "*", "perms": ["ready"]}`)
	return "[" + strings.Join(users, ",") + "]"
}

func (s *testServer) doAs(user, pass, method, path, body string) (int, http.Header) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if strings.HasPrefix(body, "[") || strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", jsonType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// With auth on, every response says so to browsers and clients: the preflight allows the
// Authorization header with credentials, and WWW-Authenticate is on every response, not only on 401s.
// -http-allow-origin sets Access-Control-Allow-Origin.
func TestAuthAndCORSHeaders(t *testing.T) {
	creds := testCredentials(t)
	s := newTestServerWith(t, func(c *Config) {
		c.Auth = creds
		c.AllowOrigin = "https://app.example"
	})
	for _, method := range []string{"OPTIONS", "GET"} {
		_, hdr := s.doAs("admin", "secret", method, "/status", "")
		for k, want := range map[string]string{
			"Access-Control-Allow-Headers":     "Content-Type, Authorization",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Origin":      "https://app.example",
			"WWW-Authenticate":                 `Basic realm="rqlite"`,
		} {
			if got := hdr.Get(k); got != want {
				t.Errorf("%s /status: %s = %q, want %q", method, k, got, want)
			}
		}
	}
	plain := newTestServer(t)
	_, hdr := plain.doAs("", "", "GET", "/status", "")
	if hdr.Get("Access-Control-Allow-Origin") != "" || hdr.Get("WWW-Authenticate") != "" || hdr.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("without auth or -http-allow-origin: %v", hdr)
	}
}

// TestPermissionMatrix: every endpoint, asked by a user holding exactly what it needs, by users holding
// something else, anonymously, and with a wrong password.
func TestPermissionMatrix(t *testing.T) {
	creds := testCredentials(t)
	s := newTestServerWith(t, func(c *Config) {
		c.Auth = creds
		c.Metrics = metrics.New()
		c.Console = console.Handler()
	})
	if code, _ := s.doAs("admin", "secret", "POST", "/db/execute", `["CREATE TABLE t (v INTEGER)"]`); code != 200 {
		t.Fatalf("admin cannot create a table: %d", code)
	}
	allowed := func(code int) bool { return code != http.StatusUnauthorized }
	for _, e := range endpointPerms {
		name := e.method + " " + e.path
		everyone := len(e.perms) == 1 && e.perms[0] == auth.Ready
		if code, _ := s.doAs("admin", "secret", e.method, e.path, e.body); !allowed(code) {
			t.Errorf("%s: admin (all) refused", name)
		}
		holder, pass := "u-"+string(e.perms[0]), "p-"+string(e.perms[0])
		if len(e.perms) == 2 {
			holder, pass = "qe", "qe"
		}
		if code, _ := s.doAs(holder, pass, e.method, e.path, e.body); !allowed(code) {
			t.Errorf("%s: %s, who holds what it needs, got %d", name, holder, code)
		}
		if everyone {
			if code, _ := s.doAs("", "", e.method, e.path, e.body); !allowed(code) {
				t.Errorf("%s: \"*\" holds ready, yet an anonymous caller got %d", name, code)
			}
			continue
		}
		code, hdr := s.doAs("", "", e.method, e.path, e.body)
		if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != `Basic realm="rqlite"` {
			t.Errorf("%s: anonymous got %d (WWW-Authenticate %q), want 401", name, code, hdr.Get("WWW-Authenticate"))
		}
		if code, _ := s.doAs(holder, "wrong", e.method, e.path, e.body); code != http.StatusUnauthorized {
			t.Errorf("%s: %s with a wrong password got %d, want 401", name, holder, code)
		}
		if code, _ := s.doAs("ghost", "boo", e.method, e.path, e.body); code != http.StatusUnauthorized {
			t.Errorf("%s: an unknown user got %d, want 401", name, code)
		}
		// Everyone holding one other permission is refused.
		for _, other := range []auth.Perm{auth.Execute, auth.Query, auth.Backup, auth.Load, auth.Snapshot, auth.Remove,
			auth.Status, auth.LeaderOps, auth.Join, auth.UI} {
			needed := false
			for _, p := range e.perms {
				needed = needed || p == other
			}
			if needed && len(e.perms) == 1 {
				continue
			}
			if code, _ := s.doAs("u-"+string(other), "p-"+string(other), e.method, e.path, e.body); code != http.StatusUnauthorized {
				t.Errorf("%s: u-%s, lacking %v, got %d, want 401", name, other, e.perms, code)
			}
		}
	}
	// Unknown paths are 404 for anyone, and CORS preflight needs no credentials.
	if code, _ := s.doAs("", "", "GET", "/nope", ""); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
	if code, _ := s.doAs("", "", "OPTIONS", "/db/execute", ""); code != http.StatusOK {
		t.Errorf("preflight: %d", code)
	}
}

// /console redirects permanently to /console/, and / temporarily.
func TestConsoleRedirects(t *testing.T) {
	s := newTestServerWith(t, func(c *Config) { c.Console = console.Handler() })
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/console": http.StatusMovedPermanently, "/": http.StatusFound} {
		resp, err := noFollow.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("Location") != "/console/" {
			t.Errorf("GET %s: %d to %q, want %d to /console/", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}
