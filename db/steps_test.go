package db

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/command"
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
		if !res[0].Results[0].stoppedBySteps() || !res[0].Results[1].stoppedBySteps() {
			t.Fatalf("an endless read sent as a write: %+v %+v", res[0].Results[0], res[0].Results[1])
		}
		// In a transaction, the whole request is undone.
		atomic := execReq("INSERT INTO t VALUES (-6)", endless)
		atomic.Transaction = true
		res = apply(t, d, atomic)
		if !res[0].Results[1].stoppedBySteps() {
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

// The step count does not depend on the writer connection's history: a replica that has just opened its
// database (empty statement cache) stops a request at the same step as one that has applied many, so a
// request that fits the limit exactly on one fits on the other.
func TestStepCountIgnoresConnectionHistory(t *testing.T) {
	defer func(old int64) { applyStepLimit = old }(applyStepLimit)
	applyStepLimit = 1 << 62
	warm := openTest(t)
	var schema []*command.Request
	for i := range 300 {
		schema = append(schema, execReq(fmt.Sprintf("CREATE TABLE t%d (a INTEGER PRIMARY KEY, b TEXT, c BLOB)", i)))
	}
	apply(t, warm, schema...)
	// A read sent as a write: it runs every step and changes nothing, so it can be applied again and again.
	probe := execReq("SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 20000) SELECT x FROM c)")
	stopped := func(d *DB, limit int64) bool {
		applyStepLimit = limit
		return apply(t, d, probe)[0].Results[0].stoppedBySteps()
	}
	// The least limit, in steps of the handler's grain, at which the probe runs to the end on the warm node.
	lo, hi := int64(0), int64(10_000_000)
	for hi-lo > 1000 {
		mid := (lo + hi) / 2 / 1000 * 1000
		if stopped(warm, mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	if stopped(warm, hi) || !stopped(warm, lo) {
		t.Fatalf("no clear boundary between %d and %d", lo, hi)
	}
	path := warm.Path()
	warm.Close()
	cold, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cold.Close()
	if stopped(cold, hi) {
		t.Fatalf("the probe fits %d steps on a warm connection but not on a fresh one", hi)
	}
	if !stopped(cold, lo) {
		t.Fatalf("the probe is stopped at %d steps on a warm connection but not on a fresh one", lo)
	}
}
