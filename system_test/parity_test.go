package system_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The /status and /debug/vars keys of rqlite's that mean something in raftlite, with rqlite's names and
// meanings, on real nodes: snapshots taken and installed, joins served, SQLite's settings.
func TestStatusAndVarsParity(t *testing.T) {
	n1 := newNode(t, "p1").start()
	waitLeader(t, n1)
	n1.mustExecute("CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
	// A snapshot that keeps one entry behind it: a node joining later must receive the database as a snapshot.
	if resp, body := do(t, client, "POST", n1.url("/snapshot?trailing_logs=1"), "", ""); resp.StatusCode != 200 {
		t.Fatalf("snapshot: %d %s", resp.StatusCode, body)
	}
	if got := n1.vars("store")["num_snapshots"]; got != 1 {
		t.Errorf("store.num_snapshots %v after one /snapshot", got)
	}
	n2 := newNode(t, "p2", "-join", n1.httpAddr).start()
	waitVoters(t, []*node{n1, n2}, 2)
	waitFor(t, "p2 with the data", 20*time.Second, func() bool { c, err := n2.count("t"); return err == nil && c == 1 })
	if got := n2.vars("store")["num_restores"]; got != 1 {
		t.Errorf("p2: store.num_restores %v, want 1 (it received the database as a snapshot)", got)
	}
	if got := n1.vars("cluster")["num_join_req"]; got < 1 {
		t.Errorf("p1: cluster.num_join_req %v", got)
	}

	st := n1.status()
	store := st["store"].(map[string]any)
	snap := store["snapshot_store"].(map[string]any)
	if snaps, _ := snap["snapshots"].([]any); len(snaps) != 1 || !strings.Contains(fmt.Sprint(snaps[0]), "-") || snap["dir"] == "" {
		t.Errorf("store.snapshot_store %v", snap)
	}
	sq := store["sqlite3"].(map[string]any)
	pragmas := sq["pragmas"].(map[string]any)
	if ro := pragmas["ro"].(map[string]any); ro["journal_mode"] != "wal" || ro["query_only"] != "1" {
		t.Errorf("store.sqlite3.pragmas.ro %v", ro)
	}
	if rw := pragmas["rw"].(map[string]any); rw["journal_mode"] != "wal" {
		t.Errorf("store.sqlite3.pragmas.rw %v", rw)
	}
	if v, _ := sq["version"].(string); !strings.HasPrefix(v, "3.") {
		t.Errorf("store.sqlite3.version %q", v)
	}
	if opts, _ := sq["compile_options"].([]any); len(opts) == 0 {
		t.Error("store.sqlite3.compile_options is empty")
	}
	if !strings.Contains(fmt.Sprint(sq["rw_dsn"]), "_journal_mode=WAL") || !strings.Contains(fmt.Sprint(sq["ro_dsn"]), "mode=ro") {
		t.Errorf("DSNs %v %v", sq["rw_dsn"], sq["ro_dsn"])
	}
	raft := store["raft"].(map[string]any)
	if raft["last_log_term"] == nil || raft["fsm_pending"] == nil || !strings.Contains(fmt.Sprint(raft["latest_configuration"]), "ID:p2") {
		t.Errorf("store.raft %v", raft)
	}
	for _, k := range []string{"fsm_term", "dir_size", "dir_size_friendly", "reap_timeout", "reap_read_only_timeout"} {
		if _, ok := store[k]; !ok {
			t.Errorf("store.%s missing", k)
		}
	}
	if rt := st["runtime"].(map[string]any); rt["kubernetes_hint"] != false {
		t.Errorf("runtime.kubernetes_hint %v", rt["kubernetes_hint"])
	}
	// Every map tools poll is there, every counter a JSON integer.
	resp, err := http.Get(n1.url("/debug/vars"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vars map[string]json.RawMessage
	json.NewDecoder(resp.Body).Decode(&vars)
	for _, m := range []string{"store", "cluster", "uploader", "downloader", "cdc.service", "http"} {
		var counters map[string]json.Number
		if err := json.Unmarshal(vars[m], &counters); err != nil {
			t.Errorf("/debug/vars %s: %v", m, err)
			continue
		}
		for k, v := range counters {
			if strings.ContainsAny(v.String(), ".eE") {
				t.Errorf("/debug/vars %s.%s = %s is not an integer", m, k, v)
			}
		}
	}
}
