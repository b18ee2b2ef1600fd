package system_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// noRedirect is a client that shows 301s instead of following them.
var noRedirect = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

func do(t *testing.T, c *http.Client, method, u, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Every operation that needs the leader works through a follower, transparently, or answers 301 with
// ?redirect; X-Rqlite-Served-By names the node that served it.
func TestFollowerForwardsAndRedirects(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	f := followers(leader, nodes)[0]
	const js = "application/json"
	resp, body := do(t, client, "POST", f.url("/db/execute"), js, `["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"]`)
	if resp.StatusCode != 200 || body != `{"results":[{}]}` || resp.Header.Get("X-Rqlite-Served-By") != leader.httpAddr {
		t.Fatalf("execute via follower: %d %s served by %q", resp.StatusCode, body, resp.Header.Get("X-Rqlite-Served-By"))
	}
	resp, body = do(t, client, "POST", f.url("/db/request"), js, `[["INSERT INTO foo(name) VALUES(?)", "x"], "SELECT name FROM foo"]`)
	if body != `{"results":[{"last_insert_id":1,"rows_affected":1},{"columns":["name"],"types":["text"],"values":[["x"]]}]}` {
		t.Errorf("request via follower: %s", body)
	}
	resp, body = do(t, client, "GET", f.url("/db/query?q=SELECT+count(*)+FROM+foo"), "", "")
	if !strings.Contains(body, `"values":[[1]]`) || resp.Header.Get("X-Rqlite-Served-By") != leader.httpAddr {
		t.Errorf("weak read via follower: %s served by %q", body, resp.Header.Get("X-Rqlite-Served-By"))
	}
	resp, body = do(t, client, "GET", f.url("/db/query?level=linearizable&q=SELECT+count(*)+FROM+foo"), "", "")
	if !strings.Contains(body, `"values":[[1]]`) || resp.Header.Get("X-Rqlite-Served-By") != f.httpAddr {
		t.Errorf("a linearizable read must be served by the follower itself: %s served by %q", body, resp.Header.Get("X-Rqlite-Served-By"))
	}
	for _, path := range []string{"/db/execute?redirect", "/db/query?redirect&q=SELECT+1", "/db/backup?redirect"} {
		method := "POST"
		if strings.HasPrefix(path, "/db/query") || strings.HasPrefix(path, "/db/backup") {
			method = "GET"
		}
		resp, _ := do(t, noRedirect, method, f.url(path), js, `["SELECT 1"]`)
		want := "http://" + leader.httpAddr + strings.Split(path, "?")[0] + "?" + strings.Split(path, "?")[1]
		if resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Errorf("%s: %d Location %q, want 301 %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// A backup through a follower is the leader's; a SQL load through a follower reaches every node.
	resp, dump := do(t, client, "GET", f.url("/db/backup?fmt=sql"), "", "")
	if !strings.Contains(dump, `INSERT INTO "foo" VALUES(1,'x');`) || resp.Header.Get("X-Rqlite-Served-By") != leader.httpAddr {
		t.Errorf("backup via follower: %q served by %q", dump, resp.Header.Get("X-Rqlite-Served-By"))
	}
	_, body = do(t, client, "POST", f.url("/db/load"), "text/plain", "CREATE TABLE loaded (x); INSERT INTO loaded VALUES(42);")
	if body != `{"results":[{"last_insert_id":1,"rows_affected":1}]}` {
		t.Errorf("SQL load via follower: %s", body)
	}
	resp, _ = do(t, client, "GET", f.url("/db/backup"), "", "")
	if resp.StatusCode != 200 {
		t.Fatal("binary backup via follower failed")
	}
	waitConverged(t, nodes...)
	// Step down through a follower, naming the new leader.
	target := followers(leader, nodes)[1]
	resp, body = do(t, client, "POST", f.url("/leader?wait"), js, `{"id":"`+target.id+`"}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Rqlite-Served-By") != leader.httpAddr {
		t.Fatalf("stepdown via follower: %d %s served by %q", resp.StatusCode, body, resp.Header.Get("X-Rqlite-Served-By"))
	}
	waitFor(t, target.id+" leading", 10*time.Second, target.isLeader)
	// /boot is for a single node only, in rqlite's words.
	_, file := do(t, client, "GET", target.url("/db/backup"), "", "")
	resp, body = do(t, client, "POST", target.url("/boot"), "application/octet-stream", file)
	if resp.StatusCode != 503 || body != "not single-node\n" {
		t.Errorf("boot on a cluster: %d %q", resp.StatusCode, body)
	}
	// A removal through a follower is the leader's work.
	removed := followers(target, nodes)[0]
	via := followers(target, nodes)[1]
	resp, body = do(t, client, "DELETE", via.url("/remove"), js, `{"id":"`+removed.id+`"}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Rqlite-Served-By") != target.httpAddr {
		t.Errorf("remove via follower: %d %s served by %q", resp.StatusCode, body, resp.Header.Get("X-Rqlite-Served-By"))
	}
}

// A binary backup is a SQLite file the sqlite3 shell opens, and a SQL dump restores into a fresh cluster
// with /db/load, giving identical data.
func TestBackupRestoresIntoAFreshCluster(t *testing.T) {
	src := cluster(t, 1)[0]
	src.mustExecute("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT, b BLOB, r REAL, d DATETIME)",
		[]any{"INSERT INTO foo(name, b, r, d) VALUES(?, ?, ?, ?)", "it's", "x'00ff'", 1.5, "2024-01-02 03:04:05"},
		"CREATE INDEX foo_name ON foo(name)", "CREATE VIEW names AS SELECT name FROM foo")
	resp, err := client.Get(src.url("/db/backup"))
	if err != nil {
		t.Fatal(err)
	}
	file, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	path := filepath.Join(t.TempDir(), "backup.db")
	os.WriteFile(path, file, 0o600)
	out, err := exec.Command("sqlite3", path, "PRAGMA integrity_check; SELECT name FROM foo; SELECT count(*) FROM sqlite_master WHERE name LIKE '_raftlite%';").CombinedOutput()
	if err != nil || string(out) != "ok\nit's\n0\n" {
		t.Errorf("sqlite3 shell on the backup: %v %q", err, out)
	}
	dump := src.dump()
	dst := cluster(t, 3)
	leader := waitLeader(t, dst...)
	_, body := do(t, client, "POST", followers(leader, dst)[0].url("/db/load"), "text/plain", dump)
	if strings.Contains(body, "error") {
		t.Fatalf("loading the dump: %s", body)
	}
	if got := waitConverged(t, dst...); got != dump {
		t.Errorf("restored data differs:\n%s\n---\n%s", dump, got)
	}
	// And the binary file loads through the log into every node too.
	_, body = do(t, client, "POST", leader.url("/db/load"), "application/octet-stream", string(file))
	if body != `{"results":[]}` {
		t.Fatalf("binary load: %s", body)
	}
	if got := waitConverged(t, dst...); got != dump {
		t.Errorf("binary-loaded data differs")
	}
}

// Read consistency across the cluster: a follower's linearizable read sees every write acknowledged before
// it began; a level-none read with a freshness bound fails once the follower has lost the leader; a read
// naming the index of a write is served by any node once it has applied it; with no leader, writes get 503.
func TestReadConsistencyOnFollowers(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE reg (id INTEGER PRIMARY KEY, v INTEGER)", "INSERT INTO reg VALUES (1, 0)")
	fs := followers(leader, nodes)
	var acked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for v := int64(1); ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := leader.execute([]any{"UPDATE reg SET v = ? WHERE id = 1", v}); err == nil {
				acked.Store(v)
			}
		}
	})
	violations, reads := 0, 0
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range fs {
			before := acked.Load()
			res, err := f.query("SELECT v FROM reg WHERE id = 1", "linearizable")
			if err != nil {
				t.Fatalf("linearizable read on %s: %v", f.id, err)
			}
			reads++
			if got := int64(res.Values[0][0].(float64)); got < before {
				violations++
				t.Errorf("%s read %d after write %d was acknowledged", f.id, got, before)
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d linearizable follower reads during %d acknowledged writes, %d stale", reads, acked.Load(), violations)

	// min_index: read-your-writes on a follower without a round trip.
	r := leader.mustExecute([]any{"UPDATE reg SET v = ? WHERE id = 1", -1})
	res, err := fs[0].queryWith("SELECT v FROM reg WHERE id = 1", fmt.Sprintf("level=none&min_index=%d", r.RaftIndex))
	if err != nil || res.Values[0][0].(float64) != -1 {
		t.Errorf("min_index read: %v %v", res.Values, err)
	}

	// Lose the leader and a follower: the last node has no leader.
	leader.kill()
	fs[1].kill()
	lone := fs[0]
	time.Sleep(1500 * time.Millisecond)
	if _, err := lone.queryWith("SELECT 1", "level=none&freshness=1s"); err == nil || !strings.Contains(err.Error(), "stale read") {
		t.Errorf("freshness read on a node cut off from the leader: %v", err)
	}
	if _, err := lone.query("SELECT 1", "none"); err != nil {
		t.Errorf("a level-none read without freshness must still work: %v", err)
	}
	resp, body := do(t, client, "POST", lone.url("/db/execute?timeout=2s"), "application/json", `["INSERT INTO reg VALUES (2, 2)"]`)
	if resp.StatusCode != 503 || body != "leader not found\n" {
		t.Errorf("write with no leader: %d %q", resp.StatusCode, body)
	}
	resp, body = do(t, client, "GET", lone.url("/readyz"), "", "")
	if resp.StatusCode != 503 || !strings.Contains(body, "[+]leader does not exist") {
		t.Errorf("readyz with no leader: %d %q", resp.StatusCode, body)
	}
}
