package system_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// logLines decodes a node's JSON log, one object per line.
func logLines(t *testing.T, n *node) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: a log line is not JSON: %q", n.id, line)
		}
		lines = append(lines, m)
	}
	return lines
}

// -log-level and -raft-log-level each set their own messages' level; neither lowers the other.
func TestLogLevelsAreIndependent(t *testing.T) {
	quietNode := newNode(t, "quiet", "-log-format", "json", "-log-level", "WARN", "-raft-log-level", "INFO").start()
	quietRaft := newNode(t, "quietraft", "-log-format", "json", "-log-level", "INFO", "-raft-log-level", "ERROR").start()
	waitLeader(t, quietNode)
	waitLeader(t, quietRaft)
	quietNode.stop()
	quietRaft.stop()

	count := func(lines []map[string]any, component, level string) int {
		n := 0
		for _, m := range lines {
			if m["level"] == level && (m["component"] == "raft") == (component == "raft") {
				n++
			}
		}
		return n
	}
	// Becoming leader is an INFO message of raft's and of the node's own.
	lines := logLines(t, quietNode)
	if n := count(lines, "node", "INFO"); n != 0 {
		t.Errorf("-log-level WARN: %d INFO lines of the node's own", n)
	}
	if n := count(lines, "raft", "INFO"); n == 0 {
		t.Error("-raft-log-level INFO: no INFO line from raft")
	}
	lines = logLines(t, quietRaft)
	if n := count(lines, "node", "INFO"); n == 0 {
		t.Error("-log-level INFO: no INFO line of the node's own")
	}
	if n := count(lines, "raft", "INFO"); n != 0 {
		t.Errorf("-raft-log-level ERROR: %d INFO lines from raft", n)
	}
}
