package shell

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The help is the list of commands as they really behave (see each command's test below); a change to a
// command's behaviour must change its line here too.
func TestHelpText(t *testing.T) {
	want := `.backup FILE             Write a SQLite copy of the database to FILE
.boot FILE               Replace a single-node cluster's database with FILE, a SQLite file, at disk speed
.changes on|off          Show the last inserted row ID after each INSERT, UPDATE, DELETE or REPLACE
.consistency [LEVEL]     Show or set the level of reads: none, weak (the default), linearizable, strong, auto
.dump FILE [TABLE,...]   Write the database (or some tables) as SQL text to FILE
.exit                    Leave the shell
.headers on|off          Show column names in column and csv modes
.help                    Show this list
.indexes [TABLE]         List the indexes and their tables, or only TABLE's
.leader                  Show the leader
.mode [MODE]             Show or set the output mode: column, csv, json, line
.nodes [all]             List the voters and whether each is reachable (all: learners too)
.output [FILE]           Send results to FILE (replacing what it held), or back to the screen
.quit                    Leave the shell
.read FILE               Run the statements and commands in FILE
.ready                   Say whether the node is ready to serve, or why not
.remove ID               Remove the node whose node-id is ID from the cluster
.restore FILE            Load FILE: a SQLite file replaces the database; SQL text runs on it, all or nothing
.schema [TABLE]          Show the CREATE statements of what .tables lists, with indexes and triggers, or of TABLE
.show                    Show the current settings
.snapshot [N]            Compact the Raft log now, keeping N entries (none or 0: the node's trailing_logs)
.status [SECTION]        Show the node's status, or one section of it (store, http, node, ...)
.stepdown [ID]           Make the leader hand leadership over, to node ID if given, and wait until it has
.tables                  List the tables and views, leaving out SQLite's own and raftlite's (_raftlite_*)
.timer on|off            Show how long each SQL request takes, on the node and round trip

SQL ends with ';' and may span lines; all statements of one input are sent in one request.
Ctrl-C cancels the input being typed, or the request under way; Ctrl-D or .exit leaves.
`
	f := newFakeNode(t)
	out, errOut := f.run(".help")
	if out != want || errOut != "" {
		t.Fatalf("got:\n%s\nwant:\n%s\nerrors: %s", out, want, errOut)
	}
	if len(f.seen) != 0 {
		t.Errorf(".help made requests: %v", f.seen)
	}
}

// fakeNode answers the shell's requests with canned responses and records them.
type fakeNode struct {
	t   *testing.T
	srv *httptest.Server
	dir string

	mu      sync.Mutex
	seen    []string // "METHOD /path?query [content type] body"
	answers map[string]answer
}

// answer is a canned response: status, content type and body.
type answer struct {
	code  int
	ctype string
	body  string
}

func newFakeNode(t *testing.T) *fakeNode {
	f := &fakeNode{t: t, dir: t.TempDir(), answers: map[string]answer{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		line := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			line += "?" + r.URL.RawQuery
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			line += " [" + ct + "]"
		}
		if len(b) > 0 {
			line += " " + string(b)
		}
		f.mu.Lock()
		f.seen = append(f.seen, line)
		a, ok := f.answers[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if !ok {
			http.Error(w, "the test gave no answer for "+r.Method+" "+r.URL.Path, http.StatusTeapot)
			return
		}
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.code)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) answer(methodPath string, code int, body string) {
	ctype := "application/json"
	if code >= 400 {
		ctype = "text/plain; charset=utf-8"
	}
	f.mu.Lock()
	f.answers[methodPath] = answer{code, ctype, body}
	f.mu.Unlock()
}

// run gives a new shell inputs, one a line, as a script does, and returns what it printed.
func (f *fakeNode) run(inputs ...string) (out, errOut string) {
	f.t.Helper()
	c, err := NewClient(ClientConfig{Hosts: []string{f.srv.URL}})
	if err != nil {
		f.t.Fatal(err)
	}
	var o, e strings.Builder
	sh := New(Config{Client: c, Out: &o, Err: &e})
	sh.Run(NewScriptReader(strings.NewReader(strings.Join(inputs, "\n"))))
	sh.Close()
	return o.String(), e.String()
}

func (f *fakeNode) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.seen
	f.seen = nil
	return out
}

func (f *fakeNode) file(name, content string) string {
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return path
}

const sqliteFile = "SQLite format 3\x00rest of the file"

// Each command, run against a node that answers as a raftlite node does: the requests it sends, and what
// it prints.
func TestCommands(t *testing.T) {
	f := newFakeNode(t)
	f.answer("POST /db/query", 200, `{"results":[{"columns":["name"],"types":["text"],"values":[["foo"],["v"]]}]}`)
	f.answer("POST /db/execute", 200, `{"results":[{"last_insert_id":7,"rows_affected":2}],"time":0.5}`)
	f.answer("GET /status", 200, `{"store":{"node_id":"n1","raft":{"state":"Leader"}},"http":{"auth":"disabled"}}`)
	f.answer("GET /nodes", 200, `{"nodes":[{"id":"n1","api_addr":"http://a:1","addr":"a:2","voter":true,"reachable":true,"leader":true},{"id":"n2","api_addr":"http://b:1","addr":"b:2","voter":false,"reachable":false,"error":"timeout"}]}`)
	f.answer("GET /readyz", 200, "[+]node ok\n[+]leader ok\n[+]store ok\n[+]db ok")
	f.answer("GET /db/backup", 200, "the backup")
	f.answer("POST /db/load", 200, `{"results":[{"last_insert_id":1,"rows_affected":1}]}`)
	f.answer("POST /boot", 200, "")
	f.answer("DELETE /remove", 200, "")
	f.answer("POST /snapshot", 200, "")
	f.answer("POST /leader", 200, "")
	table := "+------+\n| name |\n+------+\n| foo  |\n| v    |\n+------+\n"
	sqlFile := f.file("dump.sql", "CREATE TABLE foo (x);\n")
	dbFile := f.file("copy.db", sqliteFile)
	script := f.file("script.sql", "-- a comment\n.mode csv\nSELECT name\n  FROM foo;\n")
	outFile := filepath.Join(f.dir, "out.txt")
	for _, tc := range []struct {
		inputs  []string
		reqs    []string // exact
		out     string   // exact
		errOut  string   // exact
		outFile string   // what outFile holds afterwards, if anything
	}{
		{inputs: []string{".tables"}, out: table,
			reqs: []string{`POST /db/query?level=weak [application/json] [["SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_raftlite\\_%' ESCAPE '\\' ORDER BY name"]]`}},
		{inputs: []string{".TABLES x"}, errOut: "Error: usage: .tables\n"},
		{inputs: []string{".schema"}, out: "foo;\nv;\n",
			reqs: []string{`POST /db/query?level=weak [application/json] [["SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_raftlite\\_%' ESCAPE '\\' ORDER BY rowid"]]`}},
		{inputs: []string{".consistency none", ".schema foo"}, out: "foo;\nv;\n",
			reqs: []string{`POST /db/query?level=none [application/json] [["SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name = ? ORDER BY rowid","foo"]]`}},
		{inputs: []string{".indexes foo"}, out: table,
			reqs: []string{`POST /db/query?level=weak [application/json] [["SELECT name, tbl_name AS \"table\" FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_raftlite\\_%' ESCAPE '\\' ORDER BY name","foo"]]`}},
		{inputs: []string{".status"}, out: "http:\n  auth: disabled\nstore:\n  node_id: n1\n  raft:\n    state: Leader\n", reqs: []string{"GET /status"}},
		{inputs: []string{".status store"}, out: "store:\n  node_id: n1\n  raft:\n    state: Leader\n", reqs: []string{"GET /status"}},
		{inputs: []string{".status nosuch"}, errOut: "Error: no status section \"nosuch\"; sections: http, store\n", reqs: []string{"GET /status"}},
		{inputs: []string{".nodes"}, reqs: []string{"GET /nodes?ver=2"},
			out: "+----+------------+-----------+---------+-----------+---------+\n" +
				"| id | api_addr   | raft_addr | role    | reachable | error   |\n" +
				"+----+------------+-----------+---------+-----------+---------+\n" +
				"| n1 | http://a:1 | a:2       | leader  | true      |         |\n" +
				"| n2 | http://b:1 | b:2       | learner | false     | timeout |\n" +
				"+----+------------+-----------+---------+-----------+---------+\n"},
		{inputs: []string{".nodes all"}, reqs: []string{"GET /nodes?nonvoters=&ver=2"}, out: "~| n2 |"},
		{inputs: []string{".nodes some"}, errOut: "Error: usage: .nodes [all]\n"},
		{inputs: []string{".mode line", ".leader"}, reqs: []string{"GET /nodes?nonvoters=&ver=2"},
			out: "       id = n1\n api_addr = http://a:1\nraft_addr = a:2\n     role = leader\nreachable = true\n    error = \n"},
		{inputs: []string{".ready"}, out: "ready\n", reqs: []string{"GET /readyz"}},
		{inputs: []string{".consistency", ".consistency LINEARIZABLE", ".consistency", ".consistency bogus"}, out: "weak\nlinearizable\n",
			errOut: `Error: unknown level "bogus": choose one of none, weak, linearizable, strong, auto` + "\n"},
		{inputs: []string{".timer", ".timer maybe", ".timer on", "INSERT INTO foo VALUES (1), (2)"},
			errOut: "Error: usage: .timer on|off\nError: \"maybe\" is neither on nor off\n", out: "~2 rows affected\nRun Time: 0.500000 seconds (round trip ",
			reqs: []string{`POST /db/execute?level=weak&timings= [application/json] ["INSERT INTO foo VALUES (1), (2)"]`}},
		{inputs: []string{".changes on", "UPDATE foo SET x = 1"}, out: "2 rows affected, last insert ID: 7\n",
			reqs: []string{`POST /db/execute?level=weak [application/json] ["UPDATE foo SET x = 1"]`}},
		{inputs: []string{".headers off", ".mode csv", "SELECT name FROM foo"}, out: "foo\nv\n",
			reqs: []string{`POST /db/query?level=weak [application/json] ["SELECT name FROM foo"]`}},
		{inputs: []string{".mode", ".mode JSON", ".mode", ".mode xml"}, out: "column\njson\n",
			errOut: `Error: unknown mode "xml": choose one of column, csv, json, line` + "\n"},
		{inputs: []string{".backup " + filepath.Join(f.dir, "b.db")}, out: "backup written to " + filepath.Join(f.dir, "b.db") + " (10 bytes)\n",
			reqs: []string{"GET /db/backup"}},
		{inputs: []string{".dump " + filepath.Join(f.dir, "d.sql") + " foo,bar"}, out: "dump written to " + filepath.Join(f.dir, "d.sql") + " (10 bytes)\n",
			reqs: []string{"GET /db/backup?fmt=sql&tables=foo%2Cbar"}},
		{inputs: []string{".restore " + sqlFile}, out: "database restored\n",
			reqs: []string{"POST /db/load [text/plain] CREATE TABLE foo (x);\n"}},
		{inputs: []string{".restore " + dbFile}, out: "database restored\n",
			reqs: []string{"POST /db/load [application/octet-stream] " + sqliteFile}},
		{inputs: []string{".boot " + sqlFile}, errOut: "Error: " + sqlFile + " is not a SQLite database (use .restore for SQL text)\n"},
		{inputs: []string{".boot " + dbFile}, out: "node booted\n", reqs: []string{"POST /boot [application/octet-stream] " + sqliteFile}},
		{inputs: []string{".remove n2"}, out: "node n2 removed\n", reqs: []string{`DELETE /remove [application/json] {"id":"n2"}`}},
		{inputs: []string{".remove"}, errOut: "Error: usage: .remove ID\n"},
		{inputs: []string{".snapshot", ".snapshot 5", ".snapshot five"}, out: "snapshot taken\nsnapshot taken\n",
			errOut: "Error: trailing entries \"five\": not a number\n", reqs: []string{"POST /snapshot", "POST /snapshot?trailing_logs=5"}},
		{inputs: []string{".stepdown", ".stepdown n2"}, out: "leadership handed over\nleadership handed over\n",
			reqs: []string{"POST /leader?wait=", `POST /leader?wait= [application/json] {"id":"n2"}`}},
		{inputs: []string{".read " + script}, out: "name\nfoo\nv\n", reqs: []string{`POST /db/query?level=weak [application/json] ["SELECT name\n  FROM foo"]`}},
		{inputs: []string{".output " + outFile, ".consistency", ".output", ".mode"}, out: "column\n", outFile: "weak\n"},
		{inputs: []string{".show"}, out: "       host: " + f.srv.URL + "\n   failover: \nconsistency: weak\n       mode: column\n    headers: on\n      timer: off\n    changes: off\n     output: stdout\n"},
		{inputs: []string{".exit", ".mode"}},
		{inputs: []string{".QUIT", ".mode"}},
		{inputs: []string{".nosuch"}, errOut: "Error: unknown command .nosuch: enter .help for the list\n"},
	} {
		name := strings.Join(tc.inputs, "; ")
		out, errOut := f.run(tc.inputs...)
		if want, ok := strings.CutPrefix(tc.out, "~"); ok {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output %q lacks %q", name, out, want)
			}
		} else if out != tc.out {
			t.Errorf("%s: output\n%s\nwant\n%s", name, out, tc.out)
		}
		if errOut != tc.errOut {
			t.Errorf("%s: errors %q, want %q", name, errOut, tc.errOut)
		}
		if got := f.requests(); strings.Join(got, "\n") != strings.Join(tc.reqs, "\n") {
			t.Errorf("%s: requests\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(tc.reqs, "\n"))
		}
		if tc.outFile != "" {
			if b, _ := os.ReadFile(outFile); string(b) != tc.outFile {
				t.Errorf("%s: %s holds %q, want %q", name, outFile, b, tc.outFile)
			}
		}
	}
	for _, path := range []string{"b.db", "d.sql"} {
		if b, _ := os.ReadFile(filepath.Join(f.dir, path)); string(b) != "the backup" {
			t.Errorf("%s holds %q", path, b)
		}
	}
}

// Failures come back with the node's own message: a refused removal, a load that failed and changed
// nothing, a node that is not ready.
func TestCommandFailures(t *testing.T) {
	f := newFakeNode(t)
	f.answer("DELETE /remove", 404, "node \"9\" is not a member of the cluster (members: n1, n2)\n")
	f.answer("POST /db/load", 200, `{"results":[{"error":"table foo already exists"}]}`)
	f.answer("GET /readyz", 503, "[+]node ok\n[+]leader does not exist")
	f.answer("POST /leader", 409, "stepdown: cannot step down to the current Leader\n")
	f.answer("POST /db/execute", 200, `{"results":[{"error":"not authorized: _raftlite_state is raftlite's own table"}]}`)
	f.answer("POST /snapshot", 405, "")
	f.answer("GET /status", 401, "")
	sqlFile := f.file("dump.sql", "CREATE TABLE foo (x);\n")
	for _, tc := range []struct{ input, errOut string }{
		{".snapshot", "Error: the node answered 405 Method Not Allowed\n"},
		{".status", "Error: unauthorized: check the user and password (-u user:pass): 401 Unauthorized\n"},
		{".remove 9", "Error: node \"9\" is not a member of the cluster (members: n1, n2) (HTTP 404)\n"},
		{".restore " + sqlFile, "Error: restore failed, nothing was changed: table foo already exists\n"},
		{".ready", "Error: not ready: [+]node ok\n[+]leader does not exist\n"},
		{".stepdown n1", "Error: stepdown: cannot step down to the current Leader (HTTP 409)\n"},
		{"DELETE FROM _raftlite_state", "Error: not authorized: _raftlite_state is raftlite's own table\n"},
	} {
		out, errOut := f.run(tc.input)
		if out != "" || errOut != tc.errOut {
			t.Errorf("%s: output %q, errors %q, want %q", tc.input, out, errOut, tc.errOut)
		}
	}
}
