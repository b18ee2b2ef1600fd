package system_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Mistakes the cluster finds (a node-id no member has, a step-down nobody can take) reach the client as
// 4xx with the cluster's own words, from the leader and through a follower alike: the error's code travels
// with it between nodes. The shell shows them as they come.
func TestClusterFoundMistakesAreClientErrors(t *testing.T) {
	nodes := cluster(t, 2)
	learner := newNode(t, "n3", "-join", nodes[0].httpAddr, "-raft-non-voter").start()
	leader := waitLeader(t, nodes...)
	follower := followers(leader, nodes)[0]
	waitFor(t, "the learner in the membership", 30*time.Second, func() bool {
		return leader.nodes()[learner.id] != nil && follower.nodes()[learner.id] != nil
	})
	const js = "application/json"
	unknown := `node "9" is not a member of the cluster (members: n1, n2, n3)`
	for _, via := range []*node{leader, follower} {
		for _, tc := range []struct {
			method, path, body string
			code               int
			want               string
		}{
			{"DELETE", "/remove", `{"id":"9"}`, 404, unknown + "\n"},
			{"DELETE", "/remove", `{"id":9}`, 400, `invalid request body: the body must be a JSON object with one key, "id", whose value is the node-id to remove: {"id":"n2"}` + "\n"},
			{"POST", "/leader?wait", `{"id":"9"}`, 404, "stepdown: " + unknown + "\n"},
			{"POST", "/leader?wait", `{"id":"` + leader.id + `"}`, 409, "stepdown: cannot step down to the current Leader\n"},
			{"POST", "/leader?wait", `{"id":"n3"}`, 409, "stepdown: cannot step down to n3: it is not a voter, and only a voter can lead\n"},
			{"GET", "/db/query?level=bogus&q=SELECT+1", "", 400, `level "bogus" is not a consistency level: use one of none, weak, linearizable, strong, auto` + "\n"},
		} {
			resp, body := do(t, client, tc.method, via.url(tc.path), js, tc.body)
			if resp.StatusCode != tc.code || body != tc.want {
				t.Errorf("%s %s %s via %s: %d %q, want %d %q", tc.method, tc.path, tc.body, via.id, resp.StatusCode, body, tc.code, tc.want)
			}
		}
	}
	if !leader.isLeader() {
		t.Fatal("a refused step-down moved leadership")
	}
	out, errOut, code := shellRun(t, "", nil, append(hostPort(follower), ".remove 9")...)
	if want := "Error: " + unknown + " (HTTP 404)\n"; code != 1 || out != "" || errOut != want {
		t.Errorf(".remove 9: exit %d, output %q, errors %q; want errors %q", code, out, errOut, want)
	}
}

// raftlite's own table stays out of the shell's listings and of dumps, refuses changes with its reason,
// and a dump restores into a fresh node (an AUTOINCREMENT table's sequence included).
func TestStateTableHiddenAndDumpsRestore(t *testing.T) {
	n := newNode(t, "n1").start()
	waitLeader(t, n)
	dir := t.TempDir()
	dumpFile := filepath.Join(dir, "dump.sql")
	script := `CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
INSERT INTO t(v) VALUES ('a'), ('b');
CREATE INDEX t_v ON t(v);
.tables
.schema
.indexes
.dump ` + dumpFile + `
DELETE FROM _raftlite_state;
`
	out, errOut, code := shellRun(t, script, nil, hostPort(n)...)
	wantOut := "ok\n2 rows affected\nok\n" +
		"+------+\n| name |\n+------+\n| t    |\n+------+\n" +
		"CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);\nCREATE INDEX t_v ON t(v);\n" +
		"+------+-------+\n| name | table |\n+------+-------+\n| t_v  | t     |\n+------+-------+\n" +
		"dump written to " + dumpFile + " ("
	wantErr := "Error: not authorized: _raftlite_state is raftlite's own table: it records the last log entry applied to this database, " +
		"and the cluster's membership, in the same transaction as the data, so that a restarted node neither applies an entry twice " +
		"nor skips one; queries may read it, but no write may change it or read it (what it holds mid-batch depends on how each node batched the log, so replicas would differ)\n"
	if code != 1 || !strings.HasPrefix(out, wantOut) || errOut != wantErr {
		t.Fatalf("exit %d\noutput:\n%s\nwant it to begin:\n%s\nerrors:\n%s\nwant:\n%s", code, out, wantOut, errOut, wantErr)
	}
	dump, err := os.ReadFile(dumpFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(dump), "_raftlite_state") || !strings.Contains(string(dump), `INSERT INTO "sqlite_sequence" VALUES('t',2);`) {
		t.Fatalf("dump:\n%s", dump)
	}

	fresh := newNode(t, "m1").start()
	waitLeader(t, fresh)
	out, errOut, code = shellRun(t, ".restore "+dumpFile+"\nINSERT INTO t(v) VALUES ('c');\nSELECT id, v FROM t ORDER BY id;\n", nil, hostPort(fresh)...)
	wantOut = "database restored\n1 row affected\n+----+---+\n| id | v |\n+----+---+\n| 1  | a |\n| 2  | b |\n| 3  | c |\n+----+---+\n"
	if code != 0 || out != wantOut || errOut != "" {
		t.Fatalf("restore into a fresh node: exit %d\noutput:\n%s\nwant:\n%s\nerrors:\n%s", code, out, wantOut, errOut)
	}
}
