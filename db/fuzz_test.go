package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/command"
)

// FuzzApplySQL applies arbitrary SQL on two replicas: nothing may crash, every op must be recorded as
// applied, and both must end with the same data (a statement whose effect depended on the replica would
// make the cluster diverge).
func FuzzApplySQL(f *testing.F) {
	for _, seed := range []string{
		"CREATE TABLE t (x, y DEFAULT CURRENT_TIMESTAMP); INSERT INTO t(x) VALUES (random())",
		"INSERT INTO t(x) SELECT randomblob(8) FROM t",
		"BEGIN; INSERT INTO t(x) VALUES (1); ROLLBACK",
		"INSERT OR ROLLBACK INTO t(rowid) VALUES (1)",
		"UPDATE t SET x = last_insert_rowid() + changes() + total_changes()",
		"CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO t(x) SELECT 0 WHERE 0; END",
		"PRAGMA foreign_keys = ON; CREATE TABLE c (p REFERENCES t(x) DEFERRABLE INITIALLY DEFERRED); INSERT INTO c VALUES (42)",
		"VACUUM", " \x00", "SELECT * FROM t ORDER BY random() LIMIT 1",
	} {
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, sql string, tx bool) {
		if strings.Contains(strings.ToLower(sql), "randomblob") && strings.ContainsAny(sql, "123456789") {
			return // a randomblob of some size is fine; the fuzzer would only be timing memory
		}
		dir := t.TempDir()
		var dumps [2]string
		for i := range dumps {
			d, err := Open(filepath.Join(dir, "r"+string(rune('a'+i))+".db"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			req := &command.Request{Transaction: tx, Statements: []*command.Statement{{Sql: sql}}}
			for k := uint64(1); k <= 2; k++ {
				if _, err := d.Apply([]Op{{Index: k, Term: 1, Request: req, Env: Env{NowUnixMs: 1e12, Seed: k}}}); err != nil {
					t.Fatalf("apply %q: %v", sql, err)
				}
			}
			if st := d.State(); st.AppliedIndex != 2 {
				t.Fatalf("applied index %d after %q", st.AppliedIndex, sql)
			}
			var sb strings.Builder
			if err := d.Dump(context.Background(), &sb, nil); err != nil {
				t.Fatal(err)
			}
			dumps[i] = sb.String()
			d.Close()
		}
		if dumps[0] != dumps[1] {
			t.Fatalf("replicas diverged on %q:\n%s\n---\n%s", sql, dumps[0], dumps[1])
		}
	})
}
