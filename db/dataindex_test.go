package db

import (
	"context"
	"path/filepath"
	"testing"
)

// The data index moves with requests and loads only, survives a reopen, and reaches copies.
func TestDataIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, d, execReq("CREATE TABLE foo (x)"), execReq("INSERT INTO foo VALUES (1)"))
	if st := d.State(); st.DataIndex != 2 {
		t.Fatalf("after two requests: %+v", st)
	}
	// A no-op entry and a membership change leave it alone.
	if _, err := d.Apply([]Op{{Index: 3, Term: 1}, {Index: 4, Term: 1, Membership: []byte("m")}}); err != nil {
		t.Fatal(err)
	}
	if st := d.State(); st.AppliedIndex != 4 || st.DataIndex != 2 {
		t.Fatalf("after a no-op and a membership change: %+v", st)
	}
	// A failed request counts: it could have changed data.
	apply(t, d, execReq("INSERT INTO nosuchtable VALUES (1)"))
	if st := d.State(); st.DataIndex != 5 {
		t.Fatalf("after a failed request: %+v", st)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if st, err := d.Copy(context.Background(), copyPath); err != nil || st.DataIndex != 5 {
		t.Fatalf("copy: %+v %v", st, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st := d.State(); st.AppliedIndex != 5 || st.DataIndex != 5 {
		t.Fatalf("after reopening: %+v", st)
	}
	if err := d.Load(copyPath, 9, 2); err != nil {
		t.Fatal(err)
	}
	if st := d.State(); st.AppliedIndex != 9 || st.DataIndex != 9 {
		t.Fatalf("after a load: %+v", st)
	}
}

// A state table from before the data index gets the column, starting at the applied index.
func TestDataIndexAddedToOlderStateTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sqlite")
	conn, err := openConn(uriPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec("CREATE TABLE "+stateTable+" (id INTEGER PRIMARY KEY CHECK (id = 1), applied_index INTEGER NOT NULL, applied_term INTEGER NOT NULL, membership BLOB); INSERT INTO "+stateTable+" VALUES (1, 7, 2, NULL)", nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if st, err := inspect(path); err != nil || st.AppliedIndex != 7 || st.DataIndex != 7 {
		t.Fatalf("inspecting the older file: %+v %v", st, err)
	}
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st := d.State(); st.AppliedIndex != 7 || st.DataIndex != 7 {
		t.Fatalf("older state table: %+v", st)
	}
	if _, err := d.Apply([]Op{{Index: 8, Term: 2, Request: execReq("CREATE TABLE t (x)")}}); err != nil {
		t.Fatal(err)
	}
	if st := d.State(); st.DataIndex != 8 {
		t.Fatalf("after a request: %+v", st)
	}
}
