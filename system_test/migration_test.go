package system_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The migration path of docs/migration.md on raftlite's side: a backup is a plain SQLite file (the form
// rqlite's /db/backup gives too) that the sqlite3 shell opens, and that boots a new cluster with every
// row, index, trigger and view; its triggers keep working there. (rqlite itself cannot be built here.)
func TestBackupBootsNewClusterIntact(t *testing.T) {
	src := newNode(t, "old").start()
	waitLeader(t, src)
	src.mustExecute(
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total REAL)",
		"CREATE INDEX orders_by_customer ON orders(customer)",
		"CREATE TABLE audit (order_id INTEGER, note TEXT)",
		"CREATE TRIGGER orders_audit AFTER INSERT ON orders BEGIN INSERT INTO audit VALUES (new.id, 'created'); END",
		"CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100",
		"INSERT INTO orders(customer, total) VALUES ('ann', 50), ('bob', 150), ('cid', 250)")
	resp, body := do(t, client, "GET", src.url("/db/backup"), "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("backup: %d", resp.StatusCode)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	os.WriteFile(file, []byte(body), 0o600)
	out, err := exec.Command("sqlite3", file, "PRAGMA integrity_check; SELECT name FROM sqlite_master WHERE name LIKE '_raftlite%';").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("the backup as the sqlite3 shell sees it: %v %q", err, out)
	}
	schema := func(n *node) string {
		r, err := n.query("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '_raftlite%' ORDER BY name", "none")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, row := range r.Values {
			for _, v := range row {
				b.WriteString(strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")) + "|")
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	want := schema(src)

	n1 := newNode(t, "new1").start()
	waitLeader(t, n1)
	if resp, b := do(t, client, "POST", n1.url("/boot"), "application/octet-stream", body); resp.StatusCode != 200 {
		t.Fatalf("boot: %d %s", resp.StatusCode, b)
	}
	n2 := newNode(t, "new2", "-join", n1.httpAddr).start()
	n3 := newNode(t, "new3", "-join", n1.httpAddr).start()
	nodes := []*node{n1, n2, n3}
	waitVoters(t, nodes, 3)
	waitConverged(t, nodes...)
	for _, n := range nodes {
		if got := schema(n); got != want {
			t.Errorf("%s schema:\n%s\nwant:\n%s", n.id, got, want)
		}
		if r, err := n.query("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM audit), (SELECT count(*) FROM big_orders)", "none"); err != nil ||
			r.Values[0][0] != float64(3) || r.Values[0][1] != float64(3) || r.Values[0][2] != float64(2) {
			t.Errorf("%s rows: %+v %v", n.id, r, err)
		}
	}
	// The trigger came across, and fires.
	waitLeader(t, nodes...).mustExecute("INSERT INTO orders(customer, total) VALUES ('dee', 500)")
	waitConverged(t, nodes...)
	if c, err := n3.count("audit"); err != nil || c != 4 {
		t.Errorf("audit rows after an insert: %d %v", c, err)
	}
}

func toString(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
