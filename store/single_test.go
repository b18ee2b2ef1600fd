package store

import "testing"

func TestSingleNodeWrites(t *testing.T) {
	n := newTestNode(t, "n1", nil)
	leaderOf(t, n)
	execSQL(t, n, "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)")
	for i := 0; i < 20; i++ {
		execSQL(t, n, "INSERT INTO foo(name) VALUES('x')")
	}
	if c := countRows(t, n, "foo"); c != 20 {
		t.Fatalf("rows = %d", c)
	}
}
