package db

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

// A write that would never end is stopped after applyStepLimit, the same way on every replica, and the
// log goes on: the requests around it in the same batch apply normally.
func TestEndlessWriteIsStopped(t *testing.T) {
	defer func(old int64) { applyStepLimit = old }(applyStepLimit)
	applyStepLimit = 5_000_000
	replicas := []*DB{openTest(t), openTest(t)}
	endless := "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c"
	var results [][]OpResult
	for _, d := range replicas {
		apply(t, d, execReq("CREATE TABLE t (x)"))
		res := apply(t, d,
			execReq("INSERT INTO t VALUES (-1)"),
			execReq("INSERT INTO t VALUES (-2)", endless, "INSERT INTO t VALUES (-3)"),
			execReq("INSERT INTO t VALUES (-4)"))
		results = append(results, res)
		if got := res[1].Results[1].Exec; got == nil || !strings.HasPrefix(got.Error, "write stopped: the request ran more than 5000000 SQLite steps") {
			t.Fatalf("the endless write: %+v", res[1].Results[1])
		}
		// The rest of the request is not run: its budget is spent.
		if got := res[1].Results[2].Exec; got == nil || !strings.HasPrefix(got.Error, "write stopped") {
			t.Fatalf("the statement after it: %+v", res[1].Results[2])
		}
		if rows := query(t, d, "SELECT x FROM t WHERE x < 0 ORDER BY x DESC"); len(rows) != 3 {
			t.Fatalf("rows around the endless write: %v", rows)
		}
		if d.State().AppliedIndex != 4 {
			t.Fatalf("applied index %d", d.State().AppliedIndex)
		}
		// Stopped without undoing the batch's transaction (a read sent as a write): the rest is not run.
		res = apply(t, d, execReq("SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c)",
			"INSERT INTO t VALUES (-5)"))
		if !res[0].Results[0].stoppedBySteps(5_000_000) || !res[0].Results[1].stoppedBySteps(5_000_000) {
			t.Fatalf("an endless read sent as a write: %+v %+v", res[0].Results[0], res[0].Results[1])
		}
		// In a transaction, the whole request is undone.
		atomic := execReq("INSERT INTO t VALUES (-6)", endless)
		atomic.Transaction = true
		res = apply(t, d, atomic)
		if !res[0].Results[1].stoppedBySteps(5_000_000) {
			t.Fatalf("an endless write in a transaction: %+v", res[0].Results[1])
		}
		if n := count(t, d, "t"); n != 3 {
			t.Fatalf("%d rows after the stopped requests, want 3", n)
		}
		// A large write within the limit is not affected, nor is the next request's budget.
		res = apply(t, d, execReq("INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 10000) SELECT x FROM c"))
		if got := res[0].Results[0].Exec; got == nil || got.Error != "" || got.RowsAffected != 10000 {
			t.Fatalf("a write within the limit: %+v", res[0].Results[0])
		}
	}
	if a, b := dumpString(t, replicas[0]), dumpString(t, replicas[1]); a != b {
		t.Fatal("the replicas differ after the stopped write")
	}
	if a, b := results[0][1].Results[1].Exec.Error, results[1][1].Results[1].Exec.Error; a != b {
		t.Fatalf("the replicas' results differ: %q, %q", a, b)
	}
}

func dumpString(t *testing.T, d *DB) string {
	t.Helper()
	var sb strings.Builder
	if err := d.Dump(context.Background(), &sb, nil); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// Only the user's statements count against a request's steps: the writer's own statements, which run
// once per batch (and batches are cut differently on each replica), are never charged nor stopped.
func TestWritersOwnStatementsDoNotCount(t *testing.T) {
	d := openTest(t)
	w := d.w
	w.steps.limit(5_000) // five ticks of the handler
	defer w.steps.lift()
	// Far more than five ticks of work, run as the writer's own statement.
	if err := w.exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000) SELECT count(*) FROM c"); err != nil {
		t.Fatalf("the writer's own statement was charged: %v", err)
	}
	if w.steps.b.left != 5 {
		t.Fatalf("budget left %d ticks, want all 5", w.steps.b.left)
	}
}

// Each entry carries its own step limit (the leader's -apply-step-limit): a request is stopped at the
// limit its entry gives, whatever the default, and the next entry's limit is its own. While a statement
// runs, Applying names it; afterwards nothing is.
func TestEntryStepLimit(t *testing.T) {
	d := openTest(t)
	apply(t, d, execReq("CREATE TABLE t (x)"))
	next := d.State().AppliedIndex + 1
	big := execReq("INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000) SELECT x FROM c")
	res, err := d.Apply([]Op{
		{Index: next, Term: 1, Request: big, Env: Env{StepLimit: 200_000}},
		{Index: next + 1, Term: 1, Request: big, Env: Env{StepLimit: 1_000_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Results[0].Exec; got == nil || !strings.HasPrefix(got.Error, "write stopped: the request ran more than 200000 SQLite steps") {
		t.Fatalf("the write under a 200000-step limit: %+v", res[0].Results[0])
	}
	if got := res[1].Results[0].Exec; got == nil || got.Error != "" || got.RowsAffected != 100000 {
		t.Fatalf("the same write under a larger limit: %+v", res[1].Results[0])
	}
	if a, ok := d.Applying(); ok {
		t.Fatalf("Applying after the entries: %+v", a)
	}
}

// A statement kept for the log and /status is cut on a character boundary, and says it was cut.
func TestShortSQL(t *testing.T) {
	if got := ShortSQL("SELECT 1"); got != "SELECT 1" {
		t.Fatalf("short statement changed: %q", got)
	}
	long := "INSERT INTO t VALUES ('" + strings.Repeat("é", 2000) + "')"
	got := ShortSQL(long)
	if !strings.HasSuffix(got, "…") || len(got) > MaxLoggedSQL+len("…") || !utf8.ValidString(got) || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Fatalf("cut statement: %d bytes, valid %v, suffix %q", len(got), utf8.ValidString(got), got[len(got)-8:])
	}
}
