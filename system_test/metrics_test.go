package system_test

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
)

// scrape reads a node's /metrics and returns each sample (name with labels) and its value.
func scrape(t *testing.T, n *node) map[string]float64 {
	t.Helper()
	resp, err := n.client().Get(n.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// Scraped under load, the counters move: requests by endpoint and level, proposals, fsyncs, indexes,
// ReadIndex rounds; the gauges describe the node; and the Go runtime is there.
func TestMetricsMoveUnderLoad(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	follower := followers(leader, nodes)[0]
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)")
	beforeL, beforeF := scrape(t, leader), scrape(t, follower)
	w := startWriters(t, nodes, 4)
	for i := 0; i < 50; i++ {
		if _, err := follower.query("SELECT count(*) FROM acked", "linearizable"); err != nil {
			t.Fatal(err)
		}
	}
	w.halt()
	afterL, afterF := scrape(t, leader), scrape(t, follower)

	grew := func(what string, before, after map[string]float64, name string) {
		t.Helper()
		if after[name] <= before[name] {
			t.Errorf("%s: %s did not grow (%v -> %v)", what, name, before[name], after[name])
		}
	}
	grew("leader", beforeL, afterL, `raftlite_http_requests_total{code="200",endpoint="/db/execute",level="",method="POST"}`)
	grew("leader", beforeL, afterL, `raftlite_http_request_duration_seconds_count{endpoint="/db/execute",level=""}`)
	grew("leader", beforeL, afterL, "raftlite_raft_proposals_total")
	grew("leader", beforeL, afterL, "raftlite_raft_fsync_duration_seconds_count")
	grew("leader", beforeL, afterL, "raftlite_raft_commit_index")
	grew("follower", beforeF, afterF, "raftlite_raft_applied_index")
	grew("follower", beforeF, afterF, "raftlite_raft_read_index_rounds_total")
	grew("follower", beforeF, afterF, `raftlite_http_requests_total{code="200",endpoint="/db/query",level="linearizable",method="GET"}`)
	if afterL["raftlite_raft_is_leader"] != 1 || afterF["raftlite_raft_is_leader"] != 0 {
		t.Errorf("is_leader: leader %v, follower %v", afterL["raftlite_raft_is_leader"], afterF["raftlite_raft_is_leader"])
	}
	if afterL["raftlite_raft_members"] != 3 || afterL["raftlite_sqlite_db_bytes"] <= 0 || afterL["raftlite_raft_term"] < 1 {
		t.Errorf("gauges: members %v, db bytes %v, term %v", afterL["raftlite_raft_members"], afterL["raftlite_sqlite_db_bytes"], afterL["raftlite_raft_term"])
	}
	if afterL["go_goroutines"] <= 0 || afterL["process_resident_memory_bytes"] <= 0 {
		t.Errorf("runtime metrics missing")
	}
}
