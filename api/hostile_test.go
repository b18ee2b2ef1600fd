package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A client that sends part of a body and stops must not hold the handler: the request ends once the body
// stops arriving.
func TestTrickledBodyIsCut(t *testing.T) {
	s := newTestServer(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /db/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[\"SELECT")
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the stalled request held on for %s", took)
	}
	if err == nil && resp.StatusCode == 200 {
		t.Errorf("a truncated body was accepted")
	}
}

// Absurd parameters get clear answers, never a crash or a hang.
func TestAbsurdParameters(t *testing.T) {
	s := newTestServer(t)
	long := strings.Repeat("x", 100000)
	s.check([]exchange{
		{"negative timeout", "GET", "/db/query?q=SELECT+1&timeout=-1s", "", "", 400, "timeout must not be negative\n"},
		{"negative freshness", "GET", "/db/query?q=SELECT+1&level=none&freshness=-5m", "", "", 400, "freshness must not be negative\n"},
		{"huge timeout", "GET", "/db/query?q=SELECT+1&timeout=2562047h", "", "", 200, `{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}`},
		{"huge duration overflow", "GET", "/db/query?q=SELECT+1&timeout=9999999999h", "", "", 400, "timeout is not a valid duration\n"},
		{"zero linearizable timeout", "GET", "/db/query?q=SELECT+1&level=linearizable&linearizable_timeout=0s", "", "", 200, "~error"},
		{"unreachable min_index", "GET", "/db/query?q=SELECT+1&min_index=18446744073709551615&timeout=200ms", "", "", 200, "~waiting to apply index"},
		{"enormous retries", "GET", "/db/query?q=SELECT+1&retries=999999999999999999999", "", "", 400, "retries is not a valid integer\n"},
		{"long level", "GET", "/db/query?q=SELECT+1&level=" + long, "", "", 400, `level "` + long[:32] + `…" is not a consistency level: use one of none, weak, linearizable, strong, auto` + "\n"},
		{"negative trailing_logs", "POST", "/snapshot?trailing_logs=-3", "", "", 400, "trailing_logs must not be negative\n"},
		{"key with many dots", "GET", "/status?key=" + strings.Repeat("a.", 5000), "", "", 200, "{}"},
		{"tables list", "GET", "/db/backup?fmt=sql&tables=" + strings.Repeat(",", 5000), "", "", 200, "~COMMIT;"},
		{"randomblob of a gigabyte", "POST", "/db/execute?norwrandom", jsonType, `["CREATE TABLE b (x)", "INSERT INTO b VALUES (randomblob(1000000000))"]`, 200, "~larger than"},
		{"deep nesting", "POST", "/db/query", jsonType, `["SELECT ` + strings.Repeat("(", 3000) + "1" + strings.Repeat(")", 3000) + `"]`, 200, "~error"},
		{"still alive", "GET", "/db/query?q=SELECT+1", "", "", 200, `{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}`},
	})
}

// FuzzServeHTTP sends arbitrary requests to a real node's API: whatever arrives, the service must answer
// without panicking, and a 5xx is only ever a store error, never a crash.
func FuzzServeHTTP(f *testing.F) {
	for _, seed := range []struct{ method, path, ctype, body string }{
		{"POST", "/db/execute", "application/json", `["CREATE TABLE IF NOT EXISTS t (x)", ["INSERT INTO t VALUES(?)", 1]]`},
		{"GET", "/db/query?q=SELECT+*+FROM+t&associative&blob_array", "", ""},
		{"POST", "/db/request?level=strong&raft_index", "application/json", `["SELECT 1", "INSERT INTO t VALUES(2)"]`},
		{"POST", "/db/load", "text/plain", "CREATE TABLE IF NOT EXISTS u (y);"},
		{"POST", "/db/execute?queue", "application/json", `[["INSERT INTO t VALUES(?)", 3]]`},
		{"GET", "/db/backup?fmt=sql&tables=t", "", ""},
		{"POST", "/db/sql", "application/json", `["SELECT random()"]`},
		{"DELETE", "/remove", "application/json", `{"id":"x"}`},
		{"POST", "/leader", "application/json", `{"id":"n1"}`},
		{"GET", "/status?key=store.raft", "", ""},
		{"GET", "/nodes?ver=2&nonvoters", "", ""},
		{"PUT", "/%zz?%zz", "", "\x00"},
	} {
		f.Add(seed.method, seed.path, seed.ctype, []byte(seed.body))
	}
	svc := newTestServer(f).svc
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		if strings.Contains(path, "/boot") || strings.Contains(path, "/debug/pprof") {
			return // /boot replaces the database, and pprof's profile endpoints sleep for seconds
		}
		req, err := http.NewRequest(method, "http://node"+path, strings.NewReader(string(body)))
		if err != nil || req.URL.Path == "" {
			return
		}
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		svc.ServeHTTP(rec, req)
		if rec.Code == 0 {
			t.Fatalf("%s %s: no status", method, path)
		}
	})
}

// A page on another site can make a browser post a form (or a "simple" fetch) to the node with the
// credentials the browser holds for it; such requests are refused. JSON needs a CORS preflight, which
// grants nothing, and clients other than browsers send no Origin.
func TestCrossSiteFormsRefused(t *testing.T) {
	s := newTestServer(t)
	host := strings.TrimPrefix(s.url, "http://")
	for _, tc := range []struct {
		origin, contentType string
		want                int
	}{
		{"http://evil.example", "text/plain", 403},
		{"http://evil.example", "application/x-www-form-urlencoded", 403},
		{"null", "text/plain", 403},
		{"http://evil.example", jsonType, 200},
		{"http://" + host, "text/plain", 200},
		{"", "text/plain", 200},
	} {
		body := "CREATE TABLE IF NOT EXISTS x (a)"
		if tc.contentType == jsonType {
			body = `["CREATE TABLE IF NOT EXISTS x (a)"]`
		}
		req, _ := http.NewRequest("POST", s.url+"/db/execute", strings.NewReader(body))
		req.Header.Set("Content-Type", tc.contentType)
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Origin %q, %s: %d, want %d", tc.origin, tc.contentType, resp.StatusCode, tc.want)
		}
	}
}
