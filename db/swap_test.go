package db

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftlite/raftlite/command"
)

// Replacing the database (a snapshot from the leader, a load) interrupts the reads under way instead of
// waiting for them: a read that never ends would otherwise hold up the node's log for good. Reads after
// the replacement run normally.
func TestReplaceInterruptsReads(t *testing.T) {
	src := openTest(t)
	apply(t, src, execReq("CREATE TABLE foo (v)"), execReq("INSERT INTO foo VALUES ('from the snapshot')"))
	snap := filepath.Join(t.TempDir(), "snap.db")
	if _, err := src.Copy(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	d := openTest(t)
	endless := &command.Request{Mode: command.Mode_MODE_QUERY, Statements: stmts(
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c")}
	answered := make(chan OpResult, 1)
	go func() {
		res, _ := d.Query(context.Background(), endless)
		answered <- res
	}()
	for d.ReadsInProgress() == 0 {
		time.Sleep(time.Millisecond)
	}
	installed := make(chan error, 1)
	go func() { installed <- d.Install(snap, 2) }()
	select {
	case err := <-installed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the install waited for an endless read")
	}
	if res := <-answered; res.Results[0].Rows == nil || res.Results[0].Rows.Error != ErrReplaced.Error() {
		t.Fatalf("the interrupted read: %+v", res.Results[0])
	}
	if rows := query(t, d, "SELECT v FROM foo"); len(rows) != 1 || rows[0][0] != "from the snapshot" {
		t.Fatalf("a read after the install: %v", rows)
	}
}
