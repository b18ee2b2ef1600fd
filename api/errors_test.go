package api

import (
	"strings"
	"testing"
)

// Every failure the client caused gets a 4xx with a message saying what was wrong; 503 is for a cluster
// that cannot serve the request now; 500 is left for a failing disk and for bugs (an error nobody gave a
// code). Bodies keep rqlite's shapes: plain text (http.Error's, ending in a newline) for a refused request,
// a 200 JSON body with "error" for SQL that ran and failed.
func TestErrorStatuses(t *testing.T) {
	s := newTestServer(t)
	const (
		text    = "text/plain; charset=utf-8"
		jsonOut = "application/json; charset=utf-8"
	)
	sqliteGarbage := "SQLite format 3\x00 and then nothing a database holds"
	removeBad := "invalid request body: " + removeBody + "\n"
	leaderBad := `invalid JSON body: send {"id":"<node-id>"} to hand leadership to that node, or no body to let the leader choose` + "\n"
	levelBad := func(v string) string {
		return `level "` + v + `" is not a consistency level: use one of none, weak, linearizable, strong, auto` + "\n"
	}
	for _, tc := range []struct {
		name, method, path, ctype, body string
		wantCode                        int
		wantType                        string // "" when the body is empty
		wantBody                        string // exact, unless it starts with "~" (a substring)
	}{
		// Query parameters, checked on every route before it runs.
		{"timeout not a duration", "GET", "/db/query?q=SELECT+1&timeout=abc", "", "", 400, text, "timeout is not a valid duration\n"},
		{"timeout without unit", "POST", "/db/execute?timeout=5", jsonType, `["SELECT 1"]`, 400, text, "timeout is not a valid duration\n"},
		{"negative timeout", "DELETE", "/remove?timeout=-1s", jsonType, `{"id":"n2"}`, 400, text, "timeout must not be negative\n"},
		{"freshness not a duration", "GET", "/db/query?q=SELECT+1&level=none&freshness=abc", "", "", 400, text, "freshness is not a valid duration\n"},
		{"linearizable_timeout not a duration", "GET", "/db/query?q=SELECT+1&level=linearizable&linearizable_timeout=x", "", "", 400, text, "linearizable_timeout is not a valid duration\n"},
		{"db_timeout not a duration", "POST", "/db/request?db_timeout=1", jsonType, `["SELECT 1"]`, 400, text, "db_timeout is not a valid duration\n"},
		{"min_index not a number", "GET", "/db/query?q=SELECT+1&min_index=abc", "", "", 400, text, "min_index is not a valid index\n"},
		{"negative min_index", "GET", "/db/query?q=SELECT+1&min_index=-1", "", "", 400, text, "min_index is not a valid index\n"},
		{"retries not a number", "GET", "/nodes?retries=x", "", "", 400, text, "retries is not a valid integer\n"},
		{"trailing_logs not a number", "POST", "/snapshot?trailing_logs=x", "", "", 400, text, "trailing_logs is not a valid integer\n"},
		{"negative trailing_logs", "POST", "/snapshot?trailing_logs=-1", "", "", 400, text, "trailing_logs must not be negative\n"},
		{"freshness_strict alone", "GET", "/db/query?q=SELECT+1&freshness_strict", "", "", 400, text, "freshness_strict requires freshness\n"},
		{"empty q", "GET", "/db/query?q=", "", "", 400, text, "query parameter not set\n"},
		{"unknown level", "GET", "/db/query?q=SELECT+1&level=bogus", "", "", 400, text, levelBad("bogus")},
		{"unknown level on a request", "POST", "/db/request?level=strnog", jsonType, `["SELECT 1"]`, 400, text, levelBad("strnog")},
		{"unknown level, quoted and cut short", "GET", "/db/query?q=SELECT+1&level=" + strings.Repeat("x", 40) + "%22", "", "", 400, text, `level "` + strings.Repeat("x", 32) + `…" is not a consistency level: use one of none, weak, linearizable, strong, auto` + "\n"},
		{"level in capitals is a level", "GET", "/db/query?q=SELECT+1&level=LINEARIZABLE", "", "", 200, jsonOut, `~"values":[[1]]`},
		{"empty level is the default", "GET", "/db/query?q=SELECT+1&level=", "", "", 200, jsonOut, `~"values":[[1]]`},

		// Bodies: malformed, of the wrong type, of the wrong content type.
		{"not JSON", "POST", "/db/execute", jsonType, `[`, 400, text, "invalid JSON body\n"},
		{"XML", "POST", "/db/execute", "application/xml", `<sql>SELECT 1</sql>`, 400, text, "invalid JSON body\n"},
		{"JSON object", "POST", "/db/query", jsonType, `{"q":"SELECT 1"}`, 400, text, "invalid request\n"},
		{"no statements", "POST", "/db/execute", jsonType, `[]`, 400, text, "no statements\n"},
		{"number instead of SQL", "POST", "/db/execute", jsonType, `[["SELECT ?"], [1, 2]]`, 400, text, "invalid request\n"},
		{"object inside named parameters", "POST", "/db/execute", jsonType, `[["SELECT :a", {"a": {"b": 1}}]]`, 400, text, "unsupported type map[string]interface {}\n"},
		{"byte out of range", "POST", "/db/execute", jsonType, `[["SELECT ?", [1, 256]]]`, 400, text, "unsupported type 256\n"},
		{"plain text to /db/request", "POST", "/db/request", "text/plain", `SELECT 1`, 400, text, "invalid JSON body\n"},
		{"/db/sql without q", "GET", "/db/sql", "", "", 400, text, "query not specified\n"},
		{"/db/sql object", "POST", "/db/sql", jsonType, `{}`, 400, text, "invalid request\n"},
		{"queued object", "POST", "/db/execute?queue", jsonType, `{}`, 400, text, "invalid request\n"},
		{"queued nothing without wait", "POST", "/db/execute?queue", jsonType, ``, 400, text, "no statements\n"},
		{"body too large", "POST", "/db/execute", jsonType, `["` + strings.Repeat("x", 2<<20) + `"]`, 413, text, "~request body too large"},

		// /remove: the body, then the node it names.
		{"remove: not JSON", "DELETE", "/remove", jsonType, `n2`, 400, text, removeBad},
		{"remove: no id", "DELETE", "/remove", jsonType, `{}`, 400, text, removeBad},
		{"remove: id a number", "DELETE", "/remove", jsonType, `{"id":9}`, 400, text, removeBad},
		{"remove: empty id", "DELETE", "/remove", jsonType, `{"id":""}`, 400, text, removeBad},
		{"remove: another key too", "DELETE", "/remove", jsonType, `{"id":"n2","force":true}`, 400, text, removeBad},
		{"remove: unknown node", "DELETE", "/remove", jsonType, `{"id":"9"}`, 404, text, `node "9" is not a member of the cluster (members: n1)` + "\n"},
		{"remove: the only voter", "DELETE", "/remove", jsonType, `{"id":"n1"}`, 409, text, "cannot remove n1: it is the only voter\n"},
		{"remove: out of time", "DELETE", "/remove?timeout=50ms", jsonType, `{"id":"slow"}`, 503, text, "remove slow: context deadline exceeded\n"},
		{"remove: an error without a code is a bug", "DELETE", "/remove", jsonType, `{"id":"buggy"}`, 500, text, "something nobody foresaw\n"},
		{"remove by POST", "POST", "/remove", jsonType, `{"id":"n2"}`, 405, "", ""},

		// /leader: stepping down.
		{"stepdown: not JSON", "POST", "/leader", jsonType, `n2`, 400, text, leaderBad},
		{"stepdown: id a number", "POST", "/leader", jsonType, `{"id":2}`, 400, text, leaderBad},
		{"stepdown: unknown node", "POST", "/leader", jsonType, `{"id":"9"}`, 404, text, `stepdown: node "9" is not a member of the cluster (members: n1)` + "\n"},
		{"stepdown: to the leader", "POST", "/leader", jsonType, `{"id":"n1"}`, 409, text, "stepdown: cannot step down to the current Leader\n"},
		{"stepdown: nobody to hand to", "POST", "/leader?wait", "", "", 409, text, "stepdown: no other voter to hand leadership to\n"},
		{"leader by DELETE", "DELETE", "/leader", "", "", 405, "", ""},

		// Whole databases.
		{"boot: not SQLite", "POST", "/boot", "application/octet-stream", "CREATE TABLE t (x);", 400, text, "invalid SQLite data\n"},
		{"boot: SQLite's header, then garbage", "POST", "/boot", "application/octet-stream", sqliteGarbage, 400, text, "~load database: not a usable SQLite database: "},
		{"load: SQLite's header, then garbage", "POST", "/db/load", "application/octet-stream", sqliteGarbage, 400, text, "~not a usable SQLite database: "},
		{"backup: vacuum of SQL", "GET", "/db/backup?fmt=sql&vacuum", "", "", 400, text, "invalid backup format: vacuum applies to binary backups only\n"},

		// Routing.
		{"unknown path", "GET", "/db/nosuch", "", "", 404, "", ""},
		{"wrong method", "GET", "/db/execute", "", "", 405, "", ""},

		// SQL that ran and failed is a 200 with the error in the body, as in rqlite.
		{"syntax error", "POST", "/db/execute", jsonType, `["SELEC 1"]`, 200, jsonOut, `{"results":[{"error":"near \"SELEC\": syntax error"}]}`},
		{"disallowed pragma", "POST", "/db/execute", jsonType, `["PRAGMA synchronous=OFF"]`, 200, jsonOut, `{"results":[],"error":"disallowed pragma"}`},
		{"changing raftlite's own table", "POST", "/db/execute", jsonType, `["DELETE FROM _raftlite_state"]`, 200, jsonOut, `{"results":[{"error":"not authorized: _raftlite_state is raftlite's own table: it records the last log entry applied to this database, and the cluster's membership, in the same transaction as the data, so that a restarted node neither applies an entry twice nor skips one; queries may read it, but no write may change it or read it (what it holds mid-batch depends on how each node batched the log, so replicas would differ)"}]}`},
		{"reading raftlite's own table", "GET", "/db/query?q=SELECT+count(*)+FROM+_raftlite_state", "", "", 200, jsonOut, `~"values":[[1]]`},
		{"attaching a file", "POST", "/db/execute", jsonType, `["ATTACH 'x.db' AS x"]`, 200, jsonOut, `~{"results":[{"error":"not authorized: ATTACH and DETACH are not allowed: `},
	} {
		code, ctype, body := s.do(tc.method, tc.path, tc.ctype, tc.body)
		if code != tc.wantCode {
			t.Errorf("%s: status %d, want %d (body %q)", tc.name, code, tc.wantCode, body)
			continue
		}
		if tc.wantType != "" && ctype != tc.wantType {
			t.Errorf("%s: content type %q, want %q", tc.name, ctype, tc.wantType)
		}
		if want, ok := strings.CutPrefix(tc.wantBody, "~"); ok {
			if !strings.Contains(body, want) {
				t.Errorf("%s: body %q lacks %q", tc.name, body, want)
			}
		} else if body != tc.wantBody {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, body, tc.wantBody)
		}
	}
}
