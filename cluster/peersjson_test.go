package cluster

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/confchange"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/raftlite/raftlite/command"
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
	if got := mostUpToDate(states).NodeID; got != "c" {
		t.Errorf("source %s, want c (same term and index as b: the node-id breaks the tie)", got)
	}
	states[0].LastTerm = 5
	if got := mostUpToDate(states).NodeID; got != "a" {
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

// The planned conf changes take any configuration, joint ones included, to exactly the listed nodes with
// their suffrage, and raft accepts every one of them (none is cancelled).
func TestPlanChangesReachTheListedConfiguration(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 2000; round++ {
		// A random configuration of up to 7 nodes, joint one time in three.
		cs := &raftpb.ConfState{}
		ids := []uint64{1, 2, 3, 4, 5, 6, 7}[:2+rng.IntN(6)]
		for _, id := range ids {
			switch rng.IntN(3) {
			case 0:
				cs.Voters = append(cs.Voters, id)
			case 1:
				cs.Learners = append(cs.Learners, id)
			}
		}
		if len(cs.Voters) == 0 {
			cs.Voters = []uint64{ids[0]}
			cs.Learners = slices.DeleteFunc(cs.Learners, func(id uint64) bool { return id == ids[0] })
		}
		if rng.IntN(3) == 0 {
			cs.VotersOutgoing = slices.Clone(cs.Voters)
			cs.AutoLeave = new(true)
			if len(cs.Voters) > 1 && rng.IntN(2) == 0 {
				gone := cs.Voters[0] // leaves the incoming side: a learner next, or gone
				cs.Voters = cs.Voters[1:]
				if rng.IntN(2) == 0 {
					cs.LearnersNext = append(cs.LearnersNext, gone)
				}
			}
		}
		members := map[uint64]*command.Member{}
		for _, id := range ids {
			members[id] = &command.Member{RaftId: id, NodeId: fmt.Sprint("n", id), Voter: true}
		}
		// The source (a member) votes; other members are kept at random, voting or not.
		all := append(append(slices.Clone(cs.Voters), cs.VotersOutgoing...), append(cs.Learners, cs.LearnersNext...)...)
		source := all[rng.IntN(len(all))]
		want := map[uint64]bool{source: true}
		for _, id := range all {
			if id != source && rng.IntN(2) == 0 {
				want[id] = rng.IntN(2) == 0
			}
		}
		changes := planChanges(logConfig{cs: cs, members: members}, want)
		ents, err := changeEntries(changes, 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: tracker.MakeProgressTracker(1, 0), LastIndex: 1}, cs)
		if err != nil {
			t.Fatalf("restore %v: %v", cs, err)
		}
		for _, e := range ents {
			cc, _, added, _ := decodeConfChange(e)
			if cfg, prs, err = applyConf(cfg, prs, cc); err != nil {
				t.Fatalf("from %v to %v: raft refuses %v: %v", cs, want, cc, err)
			}
			for _, m := range added {
				if m.GetVoter() != want[m.GetRaftId()] {
					t.Fatalf("the record of %d says voter=%v, want %v", m.GetRaftId(), m.GetVoter(), want[m.GetRaftId()])
				}
			}
		}
		final := (&tracker.ProgressTracker{Config: cfg, Progress: prs}).ConfState()
		var wantVoters, wantLearners []uint64
		for _, id := range sortedKeys(want) {
			if want[id] {
				wantVoters = append(wantVoters, id)
			} else {
				wantLearners = append(wantLearners, id)
			}
		}
		slices.Sort(final.Voters)
		slices.Sort(final.Learners)
		if len(final.VotersOutgoing) > 0 || !slices.Equal(final.Voters, wantVoters) || !slices.Equal(final.Learners, wantLearners) {
			t.Fatalf("from %v, wanting %v: ended at %v", cs, want, final)
		}
	}
}
