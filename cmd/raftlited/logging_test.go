package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// jsonKeys returns the top-level keys of a JSON object in order, repeats included (encoding/json keeps
// only the last of a repeated key, which is how a duplicate goes unnoticed).
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %q", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// A key the logger carries and a message repeats, or a message gives twice, appears once per line; the
// repeat is renamed, not lost.
func TestLogLinesHaveUniqueKeys(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, "json", slog.LevelInfo).With("node", "n1", "component", "x")
	log.Info("event", "node", "n2", "msg", "shadow", "peer", "a", slog.Group("", "peer", "b", "peer_raft_id", "1f"), "node", "n3")
	keys := jsonKeys(t, strings.TrimSpace(buf.String()))
	want := []string{"time", "level", "msg", "node", "component", "node_2", "msg_2", "peer", "peer_2", "peer_raft_id", "node_3"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	var m map[string]any
	json.Unmarshal(buf.Bytes(), &m)
	if m["node"] != "n1" || m["node_2"] != "n2" || m["node_3"] != "n3" || m["peer_2"] != "b" {
		t.Fatalf("values moved: %v", m)
	}
	// Without repeats, a line is what slog writes.
	buf.Reset()
	newLogger(&buf, "text", slog.LevelInfo).With("node", "n1").Info("hello", "k", 1)
	if got := buf.String(); !strings.HasSuffix(got, `level=INFO msg=hello node=n1 k=1`+"\n") {
		t.Fatalf("text line %q", got)
	}
}
