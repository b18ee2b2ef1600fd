package store

import (
	"strings"
	"testing"
)

func TestParsePeers(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{`[{"id": "n1", "address": "h:4002", "non_voter": false}, {"id": "n2", "address": "h:4004"}]`, ""},
		{`[]`, "lists no nodes"},
		{`{"id": "n1"}`, "not a JSON array"},
		{`[{"id": "n1"}]`, `every node needs an "id" and an "address"`},
		{`[{"id": "n1", "address": "a"}, {"id": "n1", "address": "b"}]`, "twice"},
		{`[{"id": "n1", "address": "a"}, {"id": "n2", "address": "a"}]`, "twice"},
		{`[{"id": 7, "address": "a"}]`, "not a JSON array"},
	} {
		_, err := parsePeers("peers.json", []byte(tc.in))
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestChooseSourcePrefersTheElectionWinner(t *testing.T) {
	states := []recoveryState{
		{NodeID: "a", LastTerm: 3, LastIndex: 10},
		{NodeID: "b", LastTerm: 4, LastIndex: 8}, // a later term wins over a longer log
		{NodeID: "c", LastTerm: 4, LastIndex: 8},
	}
	if got := chooseSource(states).NodeID; got != "c" {
		t.Errorf("source %s, want c (same term and index as b: the node-id breaks the tie)", got)
	}
	states[0].LastTerm = 5
	if got := chooseSource(states).NodeID; got != "a" {
		t.Errorf("source %s, want a", got)
	}
	if recoveredClusterID(states[0]) == recoveredClusterID(states[1]) {
		t.Error("different sources give the same cluster ID")
	}
}

func FuzzParsePeers(f *testing.F) {
	f.Add([]byte(`[{"id": "n1", "address": "h:4002", "non_voter": false}]`))
	f.Add([]byte(`[{"id": "", "address": ""}]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		peers, err := parsePeers("peers.json", b)
		if err != nil {
			return
		}
		if len(peers) == 0 {
			t.Fatal("accepted an empty list")
		}
		seen := map[string]bool{}
		for _, p := range peers {
			if p.ID == "" || p.Address == "" || seen[p.ID] {
				t.Fatalf("accepted %+v", peers)
			}
			seen[p.ID] = true
		}
		_ = peersDigest(peers)
	})
}
