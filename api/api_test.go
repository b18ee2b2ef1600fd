package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// testServer is the API in front of a stand-in for a one-node cluster (localStore): no Raft.
type testServer struct {
	t   testing.TB
	url string
	st  *localStore
	svc *Service
}

func newTestServer(t testing.TB) *testServer { return newTestServerWith(t, nil) }

// newTestServerWith starts a test server whose API configuration edit may change first.
func newTestServerWith(t testing.TB, edit func(*Config)) *testServer {
	t.Helper()
	httpSrv := httptest.NewUnstartedServer(nil)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("API_TEST_LOG") != "" {
		logger = slog.Default()
	}
	st := newLocalStore(t, httpSrv.Listener.Addr().String())
	cfg := Config{Store: st, Version: "test", MaxBodyBytes: 1 << 20, Logger: logger,
		BodyIdleTimeout: 500 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	svc := New(cfg)
	httpSrv.Config.Handler = svc
	httpSrv.Start()
	t.Cleanup(func() {
		httpSrv.Close()
		svc.Close(context.Background())
	})
	return &testServer{t: t, url: httpSrv.URL, st: st, svc: svc}
}

// do sends a request and returns status, content type and body.
func (s *testServer) do(method, path, contentType, body string) (int, string, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

const jsonType = "application/json"

type exchange struct {
	name        string
	method      string
	path        string
	contentType string
	body        string
	wantCode    int
	wantBody    string // exact, unless prefixed with "~" (substring)
}

func (s *testServer) check(ex []exchange) {
	s.t.Helper()
	for _, e := range ex {
		code, _, body := s.do(e.method, e.path, e.contentType, e.body)
		if code != e.wantCode {
			s.t.Errorf("%s: status %d, want %d (body %q)", e.name, code, e.wantCode, body)
			continue
		}
		if strings.HasPrefix(e.wantBody, "~") {
			if !strings.Contains(body, e.wantBody[1:]) {
				s.t.Errorf("%s: body %q lacks %q", e.name, body, e.wantBody[1:])
			}
		} else if body != e.wantBody {
			s.t.Errorf("%s:\n got %s\nwant %s", e.name, body, e.wantBody)
		}
	}
}

func TestExecuteAndQueryFormats(t *testing.T) {
	s := newTestServer(t)
	s.check([]exchange{
		{"create", "POST", "/db/execute", jsonType, `["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT, age INTEGER, data BLOB, ts DATETIME, b BOOLEAN, r REAL)"]`, 200, `{"results":[{}]}`},
		{"positional", "POST", "/db/execute", jsonType, `[["INSERT INTO foo(name, age) VALUES(?, ?)", "fiona", 20]]`, 200, `{"results":[{"last_insert_id":1,"rows_affected":1}]}`},
		{"named", "POST", "/db/execute", jsonType, `[["INSERT INTO foo(name, age) VALUES(:name, :age)", {"name": "declan", "age": 30}]]`, 200, `{"results":[{"last_insert_id":2,"rows_affected":1}]}`},
		{"plain text", "POST", "/db/execute", "text/plain", `INSERT INTO foo(name) VALUES('<plain & text>')`, 200, `{"results":[{"last_insert_id":3,"rows_affected":1}]}`},
		{"blob, time, bool, real", "POST", "/db/execute", jsonType, `[["INSERT INTO foo(name, data, ts, b, r) VALUES(?, ?, ?, ?, ?)", "typed", "x'DEADBEEF'", "2024-01-02 03:04:05", true, 1.5]]`, 200, `{"results":[{"last_insert_id":4,"rows_affected":1}]}`},
		{"errors per statement", "POST", "/db/execute", jsonType, `["INSERT INTO nosuch VALUES(1)", "blah"]`, 200, `{"results":[{"error":"no such table: nosuch"},{"error":"near \"blah\": syntax error"}]}`},
		{"query GET", "GET", "/db/query?q=" + urlQuery("SELECT id, name FROM foo WHERE id < 3 ORDER BY id"), "", "", 200, `{"results":[{"columns":["id","name"],"types":["integer","text"],"values":[[1,"fiona"],[2,"declan"]]}]}`},
		{"query plain text escapes HTML", "POST", "/db/query", "text/plain", `SELECT name FROM foo WHERE id = 3`, 200, `{"results":[{"columns":["name"],"types":["text"],"values":[["\u003cplain \u0026 text\u003e"]]}]}`},
		{"typed values", "POST", "/db/query", jsonType, `["SELECT data, ts, b, r FROM foo WHERE id = 4"]`, 200, `{"results":[{"columns":["data","ts","b","r"],"types":["blob","datetime","boolean","real"],"values":[["3q2+7w==","2024-01-02T03:04:05Z",true,1.5]]}]}`},
		{"blob_array", "POST", "/db/query?blob_array", jsonType, `["SELECT data FROM foo WHERE id = 4"]`, 200, `{"results":[{"columns":["data"],"types":["blob"],"values":[[[222,173,190,239]]]}]}`},
		{"no rows omits values", "GET", "/db/query?q=" + urlQuery("SELECT id FROM foo WHERE id > 100"), "", "", 200, `{"results":[{"columns":["id"],"types":["integer"]}]}`},
		{"expression types from first row", "GET", "/db/query?q=" + urlQuery("SELECT COUNT(*), 1.5, NULL, 'x'"), "", "", 200, `{"results":[{"columns":["COUNT(*)","1.5","NULL","'x'"],"types":["integer","real","","text"],"values":[[1,1.5,null,"x"]]}]}`},
		{"associative", "POST", "/db/query?associative", jsonType, `["SELECT id, name FROM foo WHERE id = 1"]`, 200, `{"results":[{"types":{"id":"integer","name":"text"},"rows":[{"id":1,"name":"fiona"}]}]}`},
		{"associative execute", "POST", "/db/execute?associative", jsonType, `["UPDATE foo SET age = 21 WHERE id = 1"]`, 200, `{"results":[{"last_insert_id":4,"rows_affected":1,"rows":null}]}`},
		{"query with no q", "GET", "/db/query", "", "", 200, `{"results":[]}`},
		{"write through query", "POST", "/db/query", jsonType, `["INSERT INTO foo(name) VALUES('nope')"]`, 200, `{"results":[{"error":"attempt to change database via query operation"}]}`},
		{"write through strong query", "POST", "/db/query?level=strong", jsonType, `["DELETE FROM foo"]`, 200, `{"results":[{"error":"attempt to change database via query operation"}]}`},
		{"strong read", "GET", "/db/query?level=strong&q=" + urlQuery("SELECT count(*) FROM foo"), "", "", 200, `{"results":[{"columns":["count(*)"],"types":["integer"],"values":[[4]]}]}`},
		{"linearizable read", "GET", "/db/query?level=linearizable&q=" + urlQuery("SELECT count(*) FROM foo"), "", "", 200, `{"results":[{"columns":["count(*)"],"types":["integer"],"values":[[4]]}]}`},
		{"empty statements skipped", "POST", "/db/execute", jsonType, `["", "SELECT 1"]`, 200, `{"results":[{"last_insert_id":4,"rows_affected":1}]}`},
		{"disallowed pragma", "POST", "/db/execute", jsonType, `["PRAGMA journal_mode=DELETE"]`, 200, `{"results":[],"error":"disallowed pragma"}`},
		{"reading a pragma is fine", "GET", "/db/query?q=" + urlQuery("PRAGMA journal_mode"), "", "", 200, `{"results":[{"columns":["journal_mode"],"types":["text"],"values":[["wal"]]}]}`},
	})
}

func TestTransactionsAndRaftIndex(t *testing.T) {
	s := newTestServer(t)
	s.check([]exchange{
		{"create", "POST", "/db/execute", jsonType, `["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"]`, 200, `{"results":[{}]}`},
		{"transaction stops and rolls back", "POST", "/db/execute?transaction", jsonType, `["INSERT INTO foo(name) VALUES('a')", "INSERT INTO nosuch VALUES(1)", "INSERT INTO foo(name) VALUES('b')"]`, 200, `{"results":[{"last_insert_id":1,"rows_affected":1},{"error":"no such table: nosuch"}]}`},
		{"nothing committed", "GET", "/db/query?q=" + urlQuery("SELECT count(*) FROM foo"), "", "", 200, `{"results":[{"columns":["count(*)"],"types":["integer"],"values":[[0]]}]}`},
		{"explicit BEGIN/COMMIT in one request", "POST", "/db/execute", jsonType, `["BEGIN", "INSERT INTO foo(name) VALUES('c')", "COMMIT"]`, 200, `{"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":1,"rows_affected":1},{"last_insert_id":1,"rows_affected":1}]}`},
		{"raft_index", "POST", "/db/execute?raft_index", jsonType, `["INSERT INTO foo(name) VALUES('d')"]`, 200, `~"raft_index":`},
	})
	code, _, body := s.do("POST", "/db/execute?timings", jsonType, `["INSERT INTO foo(name) VALUES('e')"]`)
	if code != 200 || !strings.Contains(body, `"time":`) || !strings.HasPrefix(body, `{"results":[{"last_insert_id":3,"rows_affected":1,"time":`) {
		t.Errorf("timings: %d %s", code, body)
	}
}

func TestBadInput(t *testing.T) {
	s := newTestServer(t)
	big := `["` + strings.Repeat("x", 2<<20) + `"]`
	s.check([]exchange{
		{"not JSON", "POST", "/db/execute", jsonType, `[`, 400, "invalid JSON body\n"},
		{"garbage", "POST", "/db/execute", jsonType, `hello`, 400, "invalid JSON body\n"},
		{"object", "POST", "/db/execute", jsonType, `{}`, 400, "invalid request\n"},
		{"string", "POST", "/db/execute", jsonType, `"SELECT 1"`, 400, "invalid request\n"},
		{"empty array", "POST", "/db/execute", jsonType, `[]`, 400, "no statements\n"},
		{"empty inner array", "POST", "/db/execute", jsonType, `[[]]`, 400, "invalid request\n"},
		{"inner array without SQL", "POST", "/db/execute", jsonType, `[[1, 2]]`, 400, "invalid request\n"},
		{"number element", "POST", "/db/execute", jsonType, `[1]`, 400, "invalid request\n"},
		{"byte array out of range", "POST", "/db/execute", jsonType, `[["SELECT ?", [1, 256]]]`, 400, "unsupported type 256\n"},
		{"nested object", "POST", "/db/execute", jsonType, `[["SELECT :a", {"a": {"b": 1}}]]`, 400, "unsupported type map[string]interface {}\n"},
		{"trailing garbage", "POST", "/db/execute", jsonType, `["SELECT 1"] x`, 400, "invalid JSON body\n"},
		{"huge body", "POST", "/db/execute", jsonType, big, 413, "~request body too large"},
		{"bad duration", "GET", "/db/query?q=SELECT+1&timeout=soon", "", "", 400, "timeout is not a valid duration\n"},
		{"bad db_timeout", "GET", "/db/query?q=SELECT+1&db_timeout=1x", "", "", 400, "db_timeout is not a valid duration\n"},
		{"bad integer", "GET", "/db/query?q=SELECT+1&retries=many", "", "", 400, "retries is not a valid integer\n"},
		{"freshness_strict alone", "GET", "/db/query?q=SELECT+1&freshness_strict", "", "", 400, "freshness_strict requires freshness\n"},
		{"empty q", "GET", "/db/query?q=", "", "", 400, "query parameter not set\n"},
		{"invalid SQL", "GET", "/db/query?q=" + urlQuery("SELEKT 1"), "", "", 200, `{"results":[{"error":"near \"SELEKT\": syntax error"}]}`},
		{"unknown path", "GET", "/no/such/path", "", "", 404, ""},
		{"execute by GET", "GET", "/db/execute", "", "", 405, ""},
		{"query by DELETE", "DELETE", "/db/query", "", "", 405, ""},
		{"status by POST", "POST", "/status", "", "", 405, ""},
		{"remove by GET", "GET", "/remove", "", "", 405, ""},
		{"remove with no id", "DELETE", "/remove", jsonType, `{}`, 400, "invalid request body: " + removeBody + "\n"},
		{"remove with extra key", "DELETE", "/remove", jsonType, `{"id":"n1","x":1}`, 400, "invalid request body: " + removeBody + "\n"},
		{"remove unknown node", "DELETE", "/remove", jsonType, `{"id":"nosuch"}`, 404, "~nosuch"},
		{"preflight", "OPTIONS", "/db/execute", "", "", 200, ""},
		{"still serving", "GET", "/db/query?q=SELECT+1", "", "", 200, `{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}`},
	})
}

func TestStatusReadyzNodes(t *testing.T) {
	s := newTestServer(t)
	s.check([]exchange{
		{"status key", "GET", "/status?key=store.raft.state", "", "", 200, `"Leader"`},
		{"status missing key", "GET", "/status?key=store.nosuch", "", "", 200, `{}`},
		{"status leader", "GET", "/status?key=store.leader.node_id", "", "", 200, `"n1"`},
		{"readyz", "GET", "/readyz", "", "", 200, "[+]node ok\n[+]leader ok\n[+]store ok\n[+]db ok"},
		{"readyz noleader", "GET", "/readyz?noleader", "", "", 200, "[+]node ok"},
		{"readyz sync", "GET", "/readyz?sync", "", "", 200, "[+]node ok\n[+]leader ok\n[+]store ok\n[+]sync ok\n[+]db ok"},
		{"nodes", "GET", "/nodes", "", "", 200, `~"n1":{"id":"n1","api_addr":"http://`},
		{"nodes ver=2", "GET", "/nodes?ver=2", "", "", 200, `~{"nodes":[{"id":"n1",`},
	})
	code, _, body := s.do("GET", "/status?pretty&key=store.raft", "", "")
	if code != 200 || !strings.Contains(body, "\n    \"applied_index\": ") {
		t.Errorf("pretty status: %d %s", code, body)
	}
}

func urlQuery(s string) string { return url.QueryEscape(s) }
