//go:build sqlite_preupdate_hook

package db

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/command"
)

func openCapturing(t *testing.T, c Capture) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "db.sqlite"), Options{Capture: &c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

type cdcGroup struct {
	Index     uint64     `json:"index"`
	Timestamp int64      `json:"commit_timestamp"`
	Events    []cdcEvent `json:"events"`
}

type cdcEvent struct {
	Op       string         `json:"op"`
	Table    string         `json:"table"`
	NewRowID int64          `json:"new_row_id"`
	OldRowID int64          `json:"old_row_id"`
	Before   map[string]any `json:"before"`
	After    map[string]any `json:"after"`
	Error    string         `json:"error"`
}

func queued(t *testing.T, d *DB) []cdcGroup {
	t.Helper()
	gs, err := d.Changes(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []cdcGroup
	for _, g := range gs {
		var cg cdcGroup
		dec := json.NewDecoder(strings.NewReader(string(g.JSON)))
		dec.UseNumber()
		if err := dec.Decode(&cg); err != nil {
			t.Fatalf("group %d is not JSON: %v: %s", g.Index, err, g.JSON)
		}
		if cg.Index != g.Index || cg.Timestamp != g.TimestampMs {
			t.Fatalf("group %d says index %d, timestamp %d (queued at %d)", g.Index, cg.Index, cg.Timestamp, g.TimestampMs)
		}
		out = append(out, cg)
	}
	return out
}

// replay rebuilds each table's rows (by rowid) from the events, as a consumer would.
func replay(t *testing.T, groups []cdcGroup) map[string]map[int64]map[string]any {
	t.Helper()
	tables := map[string]map[int64]map[string]any{}
	for _, g := range groups {
		for _, e := range g.Events {
			if e.Error != "" {
				t.Fatalf("entry %d: event error %q", g.Index, e.Error)
			}
			rows := tables[e.Table]
			if rows == nil {
				rows = map[int64]map[string]any{}
				tables[e.Table] = rows
			}
			switch e.Op {
			case "INSERT":
				rows[e.NewRowID] = e.After
			case "UPDATE":
				if !reflect.DeepEqual(rows[e.OldRowID], e.Before) {
					t.Fatalf("entry %d: UPDATE of %s row %d: before %v, but the replayed row is %v", g.Index, e.Table, e.OldRowID, e.Before, rows[e.OldRowID])
				}
				delete(rows, e.OldRowID)
				rows[e.NewRowID] = e.After
			case "DELETE":
				if !reflect.DeepEqual(rows[e.OldRowID], e.Before) {
					t.Fatalf("entry %d: DELETE of %s row %d: before %v, but the replayed row is %v", g.Index, e.Table, e.OldRowID, e.Before, rows[e.OldRowID])
				}
				delete(rows, e.OldRowID)
			default:
				t.Fatalf("entry %d: op %q", g.Index, e.Op)
			}
		}
	}
	return tables
}

// actual reads table's rows by rowid as the events encode them.
func actual(t *testing.T, d *DB, table string) map[int64]map[string]any {
	t.Helper()
	res, err := d.Query(context.Background(), &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts("SELECT rowid AS _rid, * FROM " + table)})
	if err != nil || res.Results[0].Rows.Error != "" {
		t.Fatalf("read %s: %v %+v", table, err, res)
	}
	r := res.Results[0].Rows
	out := map[int64]map[string]any{}
	for _, vals := range r.Values {
		row := map[string]any{}
		for i, c := range r.Columns[1:] {
			row[c] = jsonish(vals[i+1])
		}
		out[vals[0].(int64)] = row
	}
	return out
}

// jsonish is v as it comes back from the events' JSON (numbers as json.Number, blobs as base64).
func jsonish(v any) any {
	b, _ := json.Marshal(v)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var out any
	dec.Decode(&out)
	return out
}

// Every committed change, and only those, is in the queue: replaying the events gives exactly the tables'
// rows, through failed statements (rolled back by SQLite), ON CONFLICT FAIL (which keeps the rows before
// the failure), explicit transactions rolled back, atomic requests that failed, statements that roll back
// the whole batch, REPLACE, cascades and triggers, across batches of several entries.
func TestCaptureMatchesCommittedChanges(t *testing.T) {
	d := openCapturing(t, Capture{})
	apply(t, d, execReq(
		"PRAGMA foreign_keys=ON",
		"CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
		"CREATE TABLE c (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p(id) ON DELETE CASCADE, v)",
		"CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT)",
		"CREATE TRIGGER t_audit AFTER INSERT ON c BEGIN INSERT INTO audit(what) VALUES ('c ' || new.id); END",
	))
	atomic := func(sqls ...string) *command.Request { r := execReq(sqls...); r.Transaction = true; return r }
	apply(t, d,
		execReq("INSERT INTO p(name) VALUES ('a'), ('b'), ('c')"),
		execReq("INSERT INTO c(pid, v) VALUES (1, 1), (1, 2.5), (2, 'x'), (3, x'00ff')"),
		// Fails on the third row: SQLite rolls the statement back (ABORT), the two rows before it go too.
		execReq("INSERT INTO p(id, name) VALUES (10, 'd'), (11, 'e'), (12, 'a')"),
		// ON CONFLICT FAIL keeps the rows before the failure.
		execReq("INSERT OR FAIL INTO p(id, name) VALUES (20, 'f'), (21, 'g'), (22, 'a')"),
		execReq("INSERT OR REPLACE INTO p(id, name) VALUES (2, 'b2')"), // deletes child rows by cascade? no: REPLACE of the parent deletes it
		execReq("BEGIN", "INSERT INTO p(name) VALUES ('rolled back')", "ROLLBACK", "INSERT INTO p(name) VALUES ('after rollback')"),
		execReq("BEGIN", "UPDATE c SET v = 'left open'"), // the open transaction is rolled back
		atomic("INSERT INTO p(name) VALUES ('atomic 1')", "INSERT INTO p(name) VALUES ('a')"),
		atomic("UPDATE p SET name = name || '!' WHERE id = 1", "DELETE FROM c WHERE pid = 3"),
		execReq("DELETE FROM p WHERE id = 1"),          // cascades to c
		execReq("UPDATE p SET id = 100 WHERE id = 20"), // the rowid changes
		// Rolls back the whole batch transaction; applied again with its outcome recorded.
		execReq("INSERT OR ROLLBACK INTO p(id, name) VALUES (200, 'b2')"),
		execReq("INSERT INTO p(name) VALUES ('last')"),
	)
	groups := queued(t, d)
	if len(groups) == 0 {
		t.Fatal("nothing queued")
	}
	got := replay(t, groups)
	for _, table := range []string{"p", "c", "audit"} {
		want := actual(t, d, table)
		if len(want) == 0 {
			t.Fatalf("table %s is empty: the test proves nothing", table)
		}
		if !reflect.DeepEqual(got[table], want) {
			t.Errorf("table %s replayed from the events:\n%v\nthe table:\n%v", table, got[table], want)
		}
	}
	// One group per entry that changed rows, in index order.
	for i := 1; i < len(groups); i++ {
		if groups[i].Index <= groups[i-1].Index {
			t.Fatalf("groups out of order: %d after %d", groups[i].Index, groups[i-1].Index)
		}
	}
	for _, g := range groups {
		if g.Timestamp != 1700000000000 {
			t.Fatalf("group %d: commit timestamp %d, want the entry's clock", g.Index, g.Timestamp)
		}
	}
}

// Values keep their storage class: integers at full precision, reals, text with HTML characters escaped
// and non-ASCII as is, blobs in base64, NULL; keys are sorted; row ids as the reference has them.
func TestCaptureEncoding(t *testing.T) {
	d := openCapturing(t, Capture{})
	apply(t, d, execReq("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, r REAL, b BLOB, n, i INTEGER, inf REAL)"))
	apply(t, d, execReq(`INSERT INTO t VALUES (1, 'h<é>&', 2.0, x'00ff10', NULL, 9007199254740993, 9e999)`))
	apply(t, d, execReq(`UPDATE t SET id = 10, r = 1e-7 WHERE id = 1`))
	apply(t, d, execReq(`DELETE FROM t`))
	gs, err := d.Changes(0, 10)
	if err != nil || len(gs) != 3 {
		t.Fatalf("groups: %d %v", len(gs), err)
	}
	want := []string{
		`{"index":2,"commit_timestamp":1700000000000,"events":[{"op":"INSERT","table":"t","new_row_id":1,"after":{"b":"AP8Q","i":9007199254740993,"id":1,"inf":null,"n":null,"r":2,"s":"h\u003cé\u003e\u0026"}}]}`,
		`{"index":3,"commit_timestamp":1700000000000,"events":[{"op":"UPDATE","table":"t","new_row_id":10,"old_row_id":1,"before":{"b":"AP8Q","i":9007199254740993,"id":1,"inf":null,"n":null,"r":2,"s":"h\u003cé\u003e\u0026"},"after":{"b":"AP8Q","i":9007199254740993,"id":10,"inf":null,"n":null,"r":1e-7,"s":"h\u003cé\u003e\u0026"}}]}`,
		`{"index":4,"commit_timestamp":1700000000000,"events":[{"op":"DELETE","table":"t","old_row_id":10,"before":{"b":"AP8Q","i":9007199254740993,"id":10,"inf":null,"n":null,"r":1e-7,"s":"h\u003cé\u003e\u0026"}}]}`,
	}
	for i, g := range gs {
		if string(g.JSON) != want[i] {
			t.Errorf("group %d:\n got %s\nwant %s", i, g.JSON, want[i])
		}
	}
}

// A table created and filled in one entry, tables with generated columns and WITHOUT ROWID tables are
// captured with their columns; row_ids_only leaves the images out; the filter keeps matching tables only;
// raftlite's own tables never appear.
func TestCaptureTablesAndOptions(t *testing.T) {
	d := openCapturing(t, Capture{})
	apply(t, d, execReq(
		"CREATE TABLE nt (a, b)", "INSERT INTO nt VALUES (1, 2)",
		"CREATE TABLE g (a INTEGER, v AS (a * 2) VIRTUAL, s AS (a * 3) STORED)", "INSERT INTO g(a) VALUES (5)",
		"CREATE TABLE w (k TEXT PRIMARY KEY, v) WITHOUT ROWID", "INSERT INTO w VALUES ('x', 1)",
	))
	gs := queued(t, d)
	if len(gs) != 1 || len(gs[0].Events) != 3 {
		t.Fatalf("groups %+v", gs)
	}
	ev := gs[0].Events
	if fmt.Sprint(ev[0].After) != "map[a:1 b:2]" || ev[0].Error != "" {
		t.Errorf("a table created in the same entry: %+v", ev[0])
	}
	if ev[1].Error != "" || ev[1].After["a"] == nil || ev[1].After["s"] == nil {
		t.Errorf("generated columns: %+v", ev[1])
	}
	if ev[2].NewRowID != 0 || fmt.Sprint(ev[2].After) != "map[k:x v:1]" {
		t.Errorf("WITHOUT ROWID: %+v", ev[2])
	}

	ids := openCapturing(t, Capture{RowIDsOnly: true, Filter: regexp.MustCompile("^keep").MatchString})
	apply(t, ids, execReq("CREATE TABLE keepme (a)", "CREATE TABLE other (a)", "INSERT INTO keepme VALUES (1)", "INSERT INTO other VALUES (1)", "UPDATE keepme SET a = 2"))
	apply(t, ids, execReq("INSERT INTO other VALUES (2)"))
	gs = queued(t, ids)
	if len(gs) != 1 || len(gs[0].Events) != 2 {
		t.Fatalf("filtered groups: %+v", gs)
	}
	for _, e := range gs[0].Events {
		if e.Table != "keepme" || e.Before != nil || e.After != nil || e.NewRowID != 1 {
			t.Errorf("row ids only, filtered: %+v", e)
		}
	}
	tables := []string{}
	for _, g := range queued(t, d) {
		for _, e := range g.Events {
			tables = append(tables, e.Table)
		}
	}
	sort.Strings(tables)
	if strings.Contains(strings.Join(tables, ","), "_raftlite") {
		t.Errorf("raftlite's own tables in the events: %v", tables)
	}
}

// The queue survives a restart, is pruned up to an index (and remembers how far), and a database
// opened without capture drops it.
func TestChangeQueuePruneAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	d, err := Open(path, Options{Capture: &Capture{}})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, d, execReq("CREATE TABLE t (a)"))
	for i := 0; i < 5; i++ {
		apply(t, d, execReq(fmt.Sprintf("INSERT INTO t VALUES (%d)", i)))
	}
	st, _ := d.ChangeStats()
	if st.Length != 5 || st.First != 2 || st.Last != 6 {
		t.Fatalf("stats %+v", st)
	}
	if n, err := d.PruneChanges(3, 1<<62); err != nil || n != 2 {
		t.Fatalf("prune: %d %v", n, err)
	}
	d.Close()
	d, err = Open(path, Options{Capture: &Capture{}})
	if err != nil {
		t.Fatal(err)
	}
	st, _ = d.ChangeStats()
	if st.Length != 3 || st.First != 4 || st.Pruned != 3 || st.Delivered != 3 {
		t.Fatalf("after a restart: %+v", st)
	}
	// Delivered groups that age keeps stay queued, but the record of their delivery moves on; pruning by
	// age alone records no delivery.
	if n, err := d.PruneChanges(5, 0); err != nil || n != 0 {
		t.Fatalf("prune keeping young groups: %d %v", n, err)
	}
	if n, err := d.PruneChanges(math.MaxUint64, 0); err != nil || n != 0 {
		t.Fatalf("prune by age: %d %v", n, err)
	}
	st, _ = d.ChangeStats()
	if st.Length != 3 || st.Delivered != 5 || st.Pruned != 3 {
		t.Fatalf("after recording delivery: %+v", st)
	}
	gs, _ := d.Changes(4, 10)
	if len(gs) != 2 || gs[0].Index != 5 {
		t.Fatalf("changes after 4: %+v", gs)
	}
	d.Close()
	d, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st, err := d.ChangeStats(); err != nil || st != (ChangeQueueStats{}) {
		t.Fatalf("the queue without capture: %+v %v", st, err)
	}
	// The tables are there on every node (the schema is the same everywhere), but nobody's statements
	// may touch them, nor make a table with raftlite's prefix.
	if rows := query(t, d, "SELECT count(*) FROM sqlite_master WHERE name LIKE '_raftlite_cdc%'"); rows[0][0] != int64(2) {
		t.Fatalf("the queue's tables: %v", rows)
	}
	for _, sql := range []string{"SELECT * FROM _raftlite_cdc", "SELECT count(*) FROM _raftlite_cdc", "INSERT INTO t SELECT idx FROM _raftlite_cdc",
		"DELETE FROM _raftlite_cdc_state", "DROP TABLE _raftlite_cdc", "CREATE TABLE _raftlite_mine (a)"} {
		res := apply(t, d, execReq(sql))
		if e := res[0].Results[0].Exec; e == nil || !strings.Contains(e.Error, "not authorized: ") || !strings.Contains(e.Error, "raftlite") {
			t.Errorf("%s: %+v", sql, res[0].Results[0])
		}
	}
}

// BenchmarkApplyInsert applies one-insert entries in batches of 32, as a busy leader does, without and
// with capture: the ratio is capture's cost on the apply path of every node.
func BenchmarkApplyInsert(b *testing.B) {
	for _, tc := range []struct {
		name    string
		capture *Capture
	}{{"off", nil}, {"capture", &Capture{}}} {
		b.Run(tc.name, func(b *testing.B) {
			d, err := Open(filepath.Join(b.TempDir(), "db.sqlite"), Options{Capture: tc.capture})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Apply([]Op{{Index: 1, Term: 1, Request: execReq("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, v REAL)")}}); err != nil {
				b.Fatal(err)
			}
			next := uint64(2)
			b.ResetTimer()
			for i := 0; i < b.N; i += 32 {
				ops := make([]Op, 0, 32)
				for j := 0; j < 32; j++ {
					req := &command.Request{Statements: []*command.Statement{{Sql: "INSERT INTO t(name, v) VALUES(?, ?)",
						Parameters: []*command.Parameter{{Value: &command.Parameter_S{S: "some name"}}, {Value: &command.Parameter_D{D: 1.5}}}}}}
					ops = append(ops, Op{Index: next, Term: 1, Request: req, Env: Env{NowUnixMs: 1700000000000}})
					next++
				}
				if _, err := d.Apply(ops); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
