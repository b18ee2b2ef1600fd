// Package apicompat is the compatibility suite of raftlite's HTTP API: for each behaviour of rqlite v10's
// API, the request and the exact response. The API's own tests run it against a stand-in store, and the
// system tests against a real node, so that both keep rqlite clients working. Each Run function starts
// from an empty one-node cluster whose node-id is n1, and builds the state it needs; cases run in order.
package apicompat

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func RunDispatch(t *testing.T, url string) {
	s := newClient(t, url)
	s.check([]Exchange{
		{"preflight on any path", "OPTIONS", "/anything/at/all", "", "", 200, ""},
		{"unknown path", "GET", "/db/nothing", "", "", 404, ""},
		{"prefix match", "POST", "/db/executeXYZ", jsonType, `["CREATE TABLE x (a)"]`, 200, `{"results":[{}]}`},
		{"exact paths are exact", "POST", "/snapshotXYZ", "", "", 404, ""},
		{"validation before routing", "GET", "/no/such/path?timeout=x", "", "", 400, "timeout is not a valid duration\n"},
		{"405 empty body", "PUT", "/db/execute", "", "", 405, ""},
		{"/boot by GET", "GET", "/boot", "", "", 405, ""},
		{"/leader by DELETE", "DELETE", "/leader", "", "", 405, ""},
		{"/db/backup by POST", "POST", "/db/backup", "", "", 405, ""},
		{"/db/load by GET", "GET", "/db/load", "", "", 405, ""},
		{"/db/request by GET", "GET", "/db/request", "", "", 405, ""},
		{"extensions reporter (the shell's .extensions)", "GET", "/status?key=extensions", "", "", 200, `~/extensions","names":[]}`}, // dir: <data>/extensions, as rqlite's
		{"cluster reporter", "GET", "/status?key=cluster.https", "", "", 200, `false`},
	})
	resp, err := http.Get(s.url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Rqlite-Version") == "" {
		t.Error("no X-Rqlite-Version header")
	}
	for k, want := range map[string]string{
		"Access-Control-Allow-Methods": "OPTIONS, GET, POST",
		"Access-Control-Allow-Headers": "Content-Type",
		"Content-Type":                 "application/json; charset=utf-8",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	code, ctype, _ := s.do("GET", "/db/query?q=", "", "")
	if code != 400 || ctype != "text/plain; charset=utf-8" {
		t.Errorf("error responses are plain text: %d %q", code, ctype)
	}
}

func RunParameters(t *testing.T, url string) {
	s := newClient(t, url)
	s.check([]Exchange{
		{"setup", "POST", "/db/execute", jsonType, `["CREATE TABLE t (id INTEGER PRIMARY KEY, v)"]`, 200, `{"results":[{}]}`},
		{"integer", "POST", "/db/execute", jsonType, `[["INSERT INTO t(v) VALUES(?)", 7]]`, 200, `{"results":[{"last_insert_id":1,"rows_affected":1}]}`},
		{"1.0 is REAL", "POST", "/db/execute", jsonType, `[["INSERT INTO t(v) VALUES(?)", 1.0]]`, 200, `{"results":[{"last_insert_id":2,"rows_affected":1}]}`},
		{"beyond int64 is REAL", "POST", "/db/execute", jsonType, `[["INSERT INTO t(v) VALUES(?)", 12345678901234567890]]`, 200, `{"results":[{"last_insert_id":3,"rows_affected":1}]}`},
		{"true is 1", "POST", "/db/execute", jsonType, `[["INSERT INTO t(v) VALUES(?)", true]]`, 200, `{"results":[{"last_insert_id":4,"rows_affected":1}]}`},
		{"x'..' string is a BLOB", "POST", "/db/execute", jsonType, `[["INSERT INTO t(v) VALUES(?)", " X'0aFF' "]]`, 200, `{"results":[{"last_insert_id":5,"rows_affected":1}]}`},
		{"byte array is a BLOB", "POST", "/db/execute", jsonType, `[["INSERT INTO t(v) VALUES(?)", [1, 2, 255]]]`, 200, `{"results":[{"last_insert_id":6,"rows_affected":1}]}`},
		{"null", "POST", "/db/execute", jsonType, `[["INSERT INTO t(v) VALUES(?)", null]]`, 200, `{"results":[{"last_insert_id":7,"rows_affected":1}]}`},
		{"not hex stays text", "POST", "/db/execute", jsonType, `[["INSERT INTO t(v) VALUES(?)", "x'zz'"]]`, 200, `{"results":[{"last_insert_id":8,"rows_affected":1}]}`},
		{"stored classes", "GET", "/db/query?q=" + query("SELECT typeof(v), v FROM t ORDER BY id"), "", "", 200,
			`{"results":[{"columns":["typeof(v)","v"],"types":["text","integer"],"values":[["integer",7],["real",1],["real",12345678901234567000],["integer",1],["blob","Cv8="],["blob","AQL/"],["null",null],["text","x'zz'"]]}]}`},
		{"mixed positional and named", "POST", "/db/query", jsonType, `[["SELECT ?, :n, ?", "a", {"n": "b"}, "c"]]`, 200, `{"results":[{"columns":["?",":n","?"],"types":["text","text","text"],"values":[["a","b","c"]]}]}`},
		{"@ and $ named", "POST", "/db/query", jsonType, `[["SELECT @a, $b", {"a": 1, "b": 2}]]`, 200, `{"results":[{"columns":["@a","$b"],"types":["integer","integer"],"values":[[1,2]]}]}`},
		{"too few parameters", "POST", "/db/query", jsonType, `[["SELECT ?, ?", 1]]`, 200, `{"results":[{"error":"not enough args to execute query: want 2 got 1"}]}`},
		{"pretty is presence-based", "GET", "/status?pretty=false&key=store.raft.voter", "", "", 200, `true`},
		// rqlite serves an unknown level as weak; raftlite refuses it, so that a mistyped level is not served
		// at a consistency the client never asked for.
		{"unknown level is refused", "GET", "/db/query?level=bogus&q=SELECT+1", "", "", 400, "level \"bogus\" is not a consistency level: use one of none, weak, linearizable, strong, auto\n"},
		{"level is case-insensitive", "GET", "/db/query?level=NONE&q=SELECT+1", "", "", 200, `{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}`},
		{"auto on a voter", "GET", "/db/query?level=auto&q=SELECT+1", "", "", 200, `{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}`},
		{"only the first value counts", "GET", "/db/query?q=SELECT+1&q=SELECT+2", "", "", 200, `{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}`},
		{"trailing_logs integer", "POST", "/snapshot?trailing_logs=abc", "", "", 400, "trailing_logs is not a valid integer\n"},
		{"linearizable_timeout duration", "GET", "/db/query?linearizable_timeout=1&q=SELECT+1", "", "", 400, "linearizable_timeout is not a valid duration\n"},
		{"freshness duration", "GET", "/db/query?freshness=abc&q=SELECT+1", "", "", 400, "freshness is not a valid duration\n"},
		{"beyond rqlite: min_index", "GET", "/db/query?min_index=x&q=SELECT+1", "", "", 400, "min_index is not a valid index\n"},
		{"db_timeout ends a long query", "GET", "/db/query?db_timeout=50ms&q=" + query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"), "", "", 200, `{"results":[{"error":"query timeout"}]}`},
	})
}

func RunResults(t *testing.T, url string) {
	s := newClient(t, url)
	s.check([]Exchange{
		{"CREATE gives {}", "POST", "/db/execute", jsonType, `["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT, txt TEXT, vc VARCHAR(10), j JSON, d DATE, ts TIMESTAMP, flag BOOLEAN)"]`, 200, `{"results":[{}]}`},
		{"insert", "POST", "/db/execute", jsonType, `[["INSERT INTO foo(name, txt, vc, j, d, ts, flag) VALUES(?, ?, ?, ?, ?, ?, ?)", "a<b", "x'0102'", "x'41'", "x'7b7d'", "2024-01-02", "2024-01-02T03:04:05Z", 0]]`, 200, `{"results":[{"last_insert_id":1,"rows_affected":1}]}`},
		{"DDL repeats the last values", "POST", "/db/execute", jsonType, `["CREATE TABLE bar (x)"]`, 200, `{"results":[{"last_insert_id":1,"rows_affected":1}]}`},
		{"SELECT through execute repeats them too", "POST", "/db/execute", jsonType, `["SELECT * FROM foo"]`, 200, `{"results":[{"last_insert_id":1,"rows_affected":1}]}`},
		{"blobs in text columns come back as strings; dates as RFC 3339; booleans", "GET", "/db/query?q=" + query("SELECT name, txt, vc, j, d, ts, flag FROM foo"), "", "", 200,
			`{"results":[{"columns":["name","txt","vc","j","d","ts","flag"],"types":["text","text","varchar(10)","json","date","timestamp","boolean"],"values":[["a\u003cb","\u0001\u0002","A","{}","2024-01-02T00:00:00Z","2024-01-02T03:04:05Z",false]]}]}`},
		{"associative: duplicate names keep the last", "GET", "/db/query?associative&q=" + query("SELECT 1 AS a, 2 AS a, 'z' AS b"), "", "", 200, `{"results":[{"types":{"a":"integer","b":"text"},"rows":[{"a":2,"b":"z"}]}]}`},
		{"associative, no rows", "GET", "/db/query?associative&q=" + query("SELECT id FROM foo WHERE 0"), "", "", 200, `{"results":[{"types":{"id":"integer"},"rows":[]}]}`},
		{"associative error", "GET", "/db/query?associative&q=" + query("SELECT * FROM nosuch"), "", "", 200, `{"results":[{"error":"no such table: nosuch"}]}`},
		{"multi-statement query returns the last", "POST", "/db/query", "text/plain", "SELECT 1; SELECT 2", 200, `{"results":[{"columns":["2"],"types":["integer"],"values":[[2]]}]}`},
		{"multi-statement execute reports the last", "POST", "/db/execute", jsonType, `["INSERT INTO bar VALUES(1); INSERT INTO bar VALUES(2), (3)"]`, 200, `{"results":[{"last_insert_id":3,"rows_affected":2}]}`},
		{"RETURNING returns rows", "POST", "/db/execute", jsonType, `[["INSERT INTO foo(name) VALUES(?) RETURNING id, name", "declan"]]`, 200, `{"results":[{"columns":["id","name"],"types":["integer","text"],"values":[[2,"declan"]]}]}`},
		{"RETURNING, associative", "POST", "/db/execute?associative", jsonType, `["UPDATE foo SET name = 'd2' WHERE id = 2 RETURNING id, name"]`, 200, `{"results":[{"types":{"id":"integer","name":"text"},"rows":[{"id":2,"name":"d2"}]}]}`},
		{"noparse: RETURNING not detected", "POST", "/db/execute?noparse", jsonType, `["DELETE FROM foo WHERE id = 2 RETURNING id"]`, 200, `{"results":[{"last_insert_id":2,"rows_affected":1}]}`},
		{"EXPLAIN through execute returns rows", "POST", "/db/execute", jsonType, `["EXPLAIN QUERY PLAN SELECT * FROM foo WHERE id = 1"]`, 200, `~{"results":[{"columns":["id","parent","notused","detail"]`},
		{"a failed statement has no time, even with timings", "POST", "/db/query?timings", jsonType, `["SELECT * FROM nosuch"]`, 200, `~{"results":[{"error":"no such table: nosuch"}],"time":`},
		{"request-level error", "POST", "/db/execute", jsonType, `["pragma synchronous = off"]`, 200, `{"results":[],"error":"disallowed pragma"}`},
		{"all disallowed forms", "POST", "/db/query", jsonType, `["PRAGMA main.journal_mode(DELETE)"]`, 200, `{"results":[],"error":"disallowed pragma"}`},
		{"wal_checkpoint in any form", "POST", "/db/request", jsonType, `["PRAGMA wal_checkpoint"]`, 200, `{"results":[],"error":"disallowed pragma"}`},
		{"beyond rqlite: settings that would split replicas", "POST", "/db/execute", jsonType, `["PRAGMA recursive_triggers = ON"]`, 200, `{"results":[],"error":"disallowed pragma"}`},
		{"explicit BEGIN and ROLLBACK", "POST", "/db/execute", jsonType, `["BEGIN", "DELETE FROM foo", "ROLLBACK"]`, 200, `{"results":[{"last_insert_id":2,"rows_affected":1},{"last_insert_id":2,"rows_affected":1},{"last_insert_id":2,"rows_affected":1}]}`},
		{"rows still there", "GET", "/db/query?q=" + query("SELECT count(*) FROM foo"), "", "", 200, `{"results":[{"columns":["count(*)"],"types":["integer"],"values":[[1]]}]}`},
		{"transaction on reads", "POST", "/db/query?transaction", jsonType, `["SELECT 1", "SELECT * FROM nosuch", "SELECT 3"]`, 200, `{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]},{"error":"no such table: nosuch"}]}`},
	})
}

func RunRequestEndpoint(t *testing.T, url string) {
	s := newClient(t, url)
	s.check([]Exchange{
		{"text body is refused", "POST", "/db/request", "text/plain", `SELECT 1`, 400, "invalid JSON body\n"},
		{"writes and reads mixed", "POST", "/db/request", jsonType, `["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)", ["INSERT INTO foo(name) VALUES(?)", "fiona"], "SELECT COUNT(*) FROM foo", "bad"]`, 200,
			`{"results":[{},{"last_insert_id":1,"rows_affected":1},{"columns":["COUNT(*)"],"types":["integer"],"values":[[1]]},{"error":"near \"bad\": syntax error"}]}`},
		{"read-only request, raft_index absent", "POST", "/db/request?raft_index", jsonType, `["SELECT name FROM foo"]`, 200, `{"results":[{"columns":["name"],"types":["text"],"values":[["fiona"]]}]}`},
		{"strong read goes through the log", "POST", "/db/request?raft_index&level=strong", jsonType, `["SELECT name FROM foo"]`, 200, `~"values":[["fiona"]]}],"raft_index":`},
		{"associative mix", "POST", "/db/request?associative", jsonType, `["INSERT INTO foo(name) VALUES('x')", "SELECT id FROM foo WHERE name = 'x'"]`, 200, `{"results":[{"last_insert_id":2,"rows_affected":1,"rows":null},{"types":{"id":"integer"},"rows":[{"id":2}]}]}`},
		{"transaction", "POST", "/db/request?transaction", jsonType, `["INSERT INTO foo(name) VALUES('y')", "INSERT INTO nosuch VALUES(1)"]`, 200, `{"results":[{"last_insert_id":3,"rows_affected":1},{"error":"no such table: nosuch"}]}`},
		{"rolled back", "POST", "/db/request", jsonType, `["SELECT count(*) FROM foo"]`, 200, `{"results":[{"columns":["count(*)"],"types":["integer"],"values":[[2]]}]}`},
	})
}

func RunSQLAnalysis(t *testing.T, url string) {
	s := newClient(t, url)
	s.check([]Exchange{
		{"no query", "GET", "/db/sql", "", "", 400, "query not specified\n"},
		{"nothing to rewrite", "GET", "/db/sql?q=" + query("SELECT 1"), "", "", 200, `{"results":[{"original":"SELECT 1"}]}`},
		{"rewritten", "POST", "/db/sql", jsonType, `["SELECT random()"]`, 200, `~{"results":[{"original":"SELECT random()","rewritten":"SELECT `},
		{"norwrandom", "POST", "/db/sql?norwrandom", jsonType, `["SELECT random()"]`, 200, `{"results":[{"original":"SELECT random()"}]}`},
		{"syntax error reported", "GET", "/db/sql?q=" + query("SELEKT 1"), "", "", 200, `{"results":[{"original":"SELEKT 1","error":"near \"SELEKT\": syntax error"}]}`},
		{"CURRENT_TIMESTAMP becomes a value, not a string", "POST", "/db/sql?norwrandom", jsonType, `["INSERT INTO t VALUES(CURRENT_TIMESTAMP)"]`, 200, `~"rewritten":"INSERT INTO t VALUES('`},
	})
}

func RunBackupLoadBoot(t *testing.T, url string) {
	s := newClient(t, url)
	s.check([]Exchange{
		{"setup", "POST", "/db/execute", jsonType, `["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO foo(name) VALUES('fiona')"]`, 200, `{"results":[{},{"last_insert_id":1,"rows_affected":1}]}`},
		{"sql dump", "GET", "/db/backup?fmt=SQL", "", "", 200, "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO \"foo\" VALUES(1,'fiona');\nCOMMIT;\n"},
		{"vacuum with sql", "GET", "/db/backup?fmt=sql&vacuum", "", "", 400, "~invalid backup format"},
	})
	get := func(path string) []byte {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	binary := get("/db/backup")
	if !bytes.HasPrefix(binary, []byte("SQLite format 3\x00")) || binary[18] != 2 || binary[19] != 2 {
		t.Errorf("binary backup: not a WAL-mode SQLite file (header %q, bytes 18-19 %v)", binary[:16], binary[18:20])
	}
	del := get("/db/backup?fmt=delete")
	if del[18] != 1 || del[19] != 1 {
		t.Errorf("delete backup: bytes 18-19 = %v", del[18:20])
	}
	vac := get("/db/backup?vacuum")
	if vac[18] != 1 || vac[19] != 1 {
		t.Errorf("vacuumed backup: bytes 18-19 = %v", vac[18:20])
	}
	zr, err := gzip.NewReader(bytes.NewReader(get("/db/backup?fmt=sql&compress")))
	if err != nil {
		t.Fatal(err)
	}
	if dump, _ := io.ReadAll(zr); !strings.Contains(string(dump), "'fiona'") {
		t.Errorf("compressed dump: %q", dump)
	}
	if strings.Contains(string(binary), stateTableName) {
		t.Error("the backup holds the node's own state table")
	}

	// A binary load replaces everything; a SQL load runs the dump and stops at its first error.
	s.check([]Exchange{
		{"change after backup", "POST", "/db/execute", jsonType, `["DROP TABLE foo", "CREATE TABLE other (x)"]`, 200, `{"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":1,"rows_affected":1}]}`},
		{"binary load", "POST", "/db/load", "application/octet-stream", string(binary), 200, `{"results":[]}`},
		{"loaded", "GET", "/db/query?q=" + query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name"), "", "", 200, `{"results":[{"columns":["name"],"types":["text"],"values":[["foo"]]}]}`},
		{"garbage that looks like SQLite", "POST", "/db/load", "application/octet-stream", "SQLite format 3\x00 and then nothing valid at all", 400, "~not a usable SQLite database"},
		{"SQL load", "POST", "/db/load", "text/plain", "CREATE TABLE t2 (x); INSERT INTO t2 VALUES(1); INSERT INTO t2 VALUES(2);", 200, `{"results":[{"last_insert_id":2,"rows_affected":1}]}`},
		{"SQL load stops and rolls back", "POST", "/db/load", "text/plain", "INSERT INTO t2 VALUES(3); INSERT INTO nosuch VALUES(1); INSERT INTO t2 VALUES(4);", 200, `{"results":[{"error":"no such table: nosuch"}]}`},
		{"nothing of it stayed", "GET", "/db/query?q=" + query("SELECT count(*) FROM t2"), "", "", 200, `{"results":[{"columns":["count(*)"],"types":["integer"],"values":[[2]]}]}`},
		{"boot refuses non-SQLite", "POST", "/boot", "application/octet-stream", "hello", 400, "invalid SQLite data\n"},
		{"boot", "POST", "/boot", "application/octet-stream", string(vac), 200, ""},
		{"booted", "GET", "/db/query?q=" + query("SELECT name FROM foo"), "", "", 200, `{"results":[{"columns":["name"],"types":["text"],"values":[["fiona"]]}]}`},
		{"writes after boot", "POST", "/db/execute", jsonType, `["INSERT INTO foo(name) VALUES('after')"]`, 200, `{"results":[{"last_insert_id":2,"rows_affected":1}]}`},
		{"snapshot", "POST", "/snapshot", "", "", 200, ""},
		{"nothing new", "POST", "/snapshot", "", "", 204, ""},
		{"reap", "POST", "/reap", "", "", 200, `{"snapshots_reaped":0,"wals_checkpointed":1}`},
	})
}

func RunLeaderAndVars(t *testing.T, url string) {
	s := newClient(t, url)
	s.check([]Exchange{
		{"GET leader", "GET", "/leader", "", "", 200, `~{"id":"n1","api_addr":"http://`},
		// rqlite answers these 500; raftlite keeps its words and gives the status of the client's error.
		{"step down with nobody to hand to", "POST", "/leader?wait", "", "", 409, "stepdown: no other voter to hand leadership to\n"},
		{"step down to itself", "POST", "/leader", jsonType, `{"id":"n1"}`, 409, "stepdown: cannot step down to the current Leader\n"},
		{"unknown target", "POST", "/leader", jsonType, `{"id":"nosuch"}`, 404, "stepdown: node \"nosuch\" is not a member of the cluster (members: n1)\n"},
		{"vars", "GET", "/debug/vars", "", "", 200, `~"memstats":`},
		{"vars key", "GET", "/debug/vars?key=cmdline", "", "", 200, "~\"cmdline\": ["},
		{"pprof index", "GET", "/debug/pprof/", "", "", 200, "~goroutine"},
		{"licenses", "GET", "/licenses", "", "", 200, "~SQLite"},
	})
}

func RunQueuedWrites(t *testing.T, url string) {
	s := newClient(t, url)
	s.check([]Exchange{
		{"setup", "POST", "/db/execute", jsonType, `["CREATE TABLE q (id INTEGER PRIMARY KEY, v)"]`, 200, `{"results":[{}]}`},
		{"empty list without wait", "POST", "/db/execute?queue", jsonType, `[]`, 400, "no statements\n"},
		{"text is not supported", "POST", "/db/execute?queue", "text/plain", `INSERT INTO q(v) VALUES(1)`, 400, "invalid JSON body\n"},
	})
	var seqs []int64
	for i := 0; i < 5; i++ {
		code, _, body := s.do("POST", "/db/execute?queue", jsonType, `[["INSERT INTO q(v) VALUES(?)", 1]]`)
		var r struct {
			Results        []any `json:"results"`
			SequenceNumber int64 `json:"sequence_number"`
		}
		if code != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Results == nil || len(r.Results) != 0 || r.SequenceNumber == 0 {
			t.Fatalf("queued write: %d %s", code, body)
		}
		seqs = append(seqs, r.SequenceNumber)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Errorf("sequence numbers do not increase: %v", seqs)
		}
	}
	// An empty list with wait is a barrier: it returns once everything queued before it is written.
	for _, barrier := range []string{`[]`, ``} {
		code, _, body := s.do("POST", "/db/execute?queue&wait", jsonType, barrier)
		if code != 200 || !strings.Contains(body, `"sequence_number":`) {
			t.Fatalf("barrier %q: %d %s", barrier, code, body)
		}
	}
	if code, _, body := s.do("POST", "/db/execute?queue", jsonType, ``); code != 400 {
		t.Fatalf("an empty queued write without wait: %d %s", code, body)
	}
	s.check([]Exchange{
		{"all written", "GET", "/db/query?q=" + query("SELECT count(*) FROM q"), "", "", 200, `{"results":[{"columns":["count(*)"],"types":["integer"],"values":[[5]]}]}`},
		{"wait timeout", "POST", "/db/execute?queue&wait&timeout=1ns", jsonType, `[["INSERT INTO q(v) VALUES(?)", 2]]`, 408, "queue wait timeout\n"},
		{"sequence number in status", "GET", "/status?key=http.queue._default.batch_size", "", "", 200, `128`},
	})
}

const stateTableName = "_raftlite_state"

const jsonType = "application/json"

// Exchange is one request and the response it must get.
type Exchange struct {
	Name        string
	Method      string
	Path        string
	ContentType string
	Body        string
	WantCode    int
	WantBody    string // exact, unless prefixed with "~" (a substring)
}

type client struct {
	t   *testing.T
	url string
}

func newClient(t *testing.T, url string) *client { return &client{t: t, url: url} }

// do sends a request and returns status, content type and body.
func (c *client) do(method, path, contentType, body string) (int, string, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func (c *client) check(ex []Exchange) {
	c.t.Helper()
	Check(c.t, c.url, ex)
}

// Check sends each exchange's request to the node at base, in order, and reports every answer that
// differs from the one wanted.
func Check(t *testing.T, base string, ex []Exchange) {
	t.Helper()
	c := &client{t: t, url: base}
	for _, e := range ex {
		code, _, body := c.do(e.Method, e.Path, e.ContentType, e.Body)
		if code != e.WantCode {
			t.Errorf("%s: status %d, want %d (body %q)", e.Name, code, e.WantCode, body)
			continue
		}
		if strings.HasPrefix(e.WantBody, "~") {
			if !strings.Contains(body, e.WantBody[1:]) {
				t.Errorf("%s: body %q lacks %q", e.Name, body, e.WantBody[1:])
			}
		} else if body != e.WantBody {
			t.Errorf("%s:\n got %s\nwant %s", e.Name, body, e.WantBody)
		}
	}
}

func query(s string) string { return url.QueryEscape(s) }
