package system_test

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// logEvents decodes a node's JSON log and fails the test on a line with a repeated key (encoding/json
// would keep only the last of them, hiding the repeat).
func logEvents(t *testing.T, n *node) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("%s: a log line is not a JSON object: %q", n.id, line)
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("%s: %q: %v", n.id, line, err)
			}
			key := tok.(string)
			if seen[key] {
				t.Errorf("%s: key %q twice in %s", n.id, key, line)
			}
			seen[key] = true
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%s: %q: %v", n.id, line, err)
			}
		}
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		out = append(out, m)
	}
	return out
}

// events returns the lines with message msg at level, from the start-th "raftlited started" on (1: the
// first run).
func events(lines []map[string]any, start int, level, msg string) []map[string]any {
	var out []map[string]any
	run := 0
	for _, m := range lines {
		if m["msg"] == "raftlited started" {
			run++
		}
		if run >= start && m["level"] == level && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// An operator follows the cluster in the log: one INFO line per change of leader and of membership,
// naming nodes by node-id; the lines a restart replays are not news; no line repeats a key; Raft IDs
// appear in hexadecimal only.
func TestOperatorLogLines(t *testing.T) {
	jsonLogs := []string{"-log-format", "json"}
	n1 := newNode(t, "n1", jsonLogs...).start()
	waitLeader(t, n1)
	n2 := newNode(t, "n2", append([]string{"-join", n1.httpAddr}, jsonLogs...)...).start()
	n3 := newNode(t, "n3", append([]string{"-join", n1.httpAddr}, jsonLogs...)...).start()
	nodes := []*node{n1, n2, n3}
	waitVoters(t, nodes, 3)
	n1.mustExecute("CREATE TABLE t (x)")

	// A new leader: n1 stops, n2 or n3 takes over; n1 comes back as a follower.
	n1.stop()
	leader := waitLeader(t, n2, n3)
	n1.start()
	waitVoters(t, nodes, 3)
	waitFor(t, "n1 to follow "+leader.id, 20*time.Second, func() bool {
		return n1.storeField("leader", "node_id") == leader.id
	})
	// A removal.
	other := followers(leader, []*node{n2, n3})[0]
	if code, err := httpDelete(leader.url("/remove"), `{"id":"`+other.id+`"}`); err != nil || code != 200 {
		t.Fatalf("remove %s: %d %v", other.id, code, err)
	}
	waitVoters(t, []*node{n1, leader}, 2)
	time.Sleep(500 * time.Millisecond) // the last lines reach the files

	raftIDs := map[string]string{} // hex -> node-id
	for _, n := range nodes {
		raftIDs[n.status()["store"].(map[string]any)["raft_id"].(string)] = n.id
	}
	names := map[string]bool{"n1": true, "n2": true, "n3": true, "none": true}
	for _, n := range nodes {
		// Joining nodes hear from the leader before they know the members' names: the line waits for them.
		for _, m := range events(logEvents(t, n), 1, "INFO", "leader changed") {
			if !names[m["leader"].(string)] || !names[m["previous"].(string)] {
				t.Errorf("%s: a leader line names a node by other than its node-id: %v", n.id, m)
			}
		}
	}
	for _, n := range []*node{n1, leader} {
		lines := logEvents(t, n)
		// Every leader this node saw, named by node-id, with the term.
		changes := events(lines, 1, "INFO", "leader changed")
		if len(changes) == 0 {
			t.Fatalf("%s logged no leader change", n.id)
		}
		last := changes[len(changes)-1]
		if last["leader"] != leader.id || last["term"] == nil {
			t.Errorf("%s's last leader line: %v, want leader %s", n.id, last, leader.id)
		}
		// Membership: each change once, in words, with node-ids.
		var said []string
		for _, m := range events(lines, 1, "INFO", "membership changed") {
			said = append(said, m["change"].(string))
		}
		all := strings.Join(said, " | ")
		if !strings.Contains(all, other.id+" removed") {
			t.Errorf("%s's membership lines do not report the removal of %s: %s", n.id, other.id, all)
		}
		if n == n1 {
			for _, want := range []string{"n2 added as a learner", "n3 added as a learner", "n2 promoted to voter", "n3 promoted to voter"} {
				if !strings.Contains(all, want) {
					t.Errorf("n1's membership lines lack %q: %s", want, all)
				}
			}
			if c := strings.Count(all, "n2 promoted"); c != 1 {
				t.Errorf("n1 reports n2's promotion %d times: %s", c, all)
			}
			// The restart replays nothing as news, and sees the leader it follows.
			if again := events(lines, 2, "INFO", "membership changed"); len(again) > 1 || (len(again) == 1 && !strings.Contains(again[0]["change"].(string), "removed")) {
				t.Errorf("after its restart n1 reported old membership changes as new: %v", again)
			}
			if seen := events(lines, 2, "INFO", "leader changed"); len(seen) == 0 || seen[0]["leader"] != leader.id {
				t.Errorf("after its restart n1's leader lines: %v", seen)
			}
		}
		// Raft IDs are hexadecimal wherever they appear; no line shows one in decimal.
		b, _ := os.ReadFile(n.logPath)
		for hex, id := range raftIDs {
			v, err := strconv.ParseUint(hex, 16, 64)
			if err != nil {
				t.Fatalf("raft_id %q of %s", hex, id)
			}
			if strings.Contains(string(b), strconv.FormatUint(v, 10)) {
				t.Errorf("%s's log shows %s's Raft ID in decimal (%d)", n.id, id, v)
			}
		}
		for _, m := range lines {
			if m["component"] == "transport" && m["peer"] != nil && m["peer_raft_id"] != nil {
				if want := raftIDs[m["peer_raft_id"].(string)]; want != "" && m["peer"] != want {
					t.Errorf("%s: transport line names peer %v for Raft ID %v (%s)", n.id, m["peer"], m["peer_raft_id"], want)
				}
			}
		}
	}
}
