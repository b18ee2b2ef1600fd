package store

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func flipByte(t *testing.T, path string, fromEnd int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-fromEnd] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func lastSegment(t *testing.T, dir string) string {
	segs, _ := filepath.Glob(filepath.Join(dir, "raft", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no log segments")
	}
	sort.Strings(segs)
	return segs[len(segs)-1]
}

// A follower whose database file or Raft log is damaged while it is stopped sets its data aside, rejoins as
// a new member and gets all the data back from its peers.
func TestDamagedFollowerRecoversFromPeers(t *testing.T) {
	for _, damage := range []string{"database", "log"} {
		t.Run(damage, func(t *testing.T) {
			nodes := threeNodes(t, nil)
			leader := leaderOf(t, nodes...)
			execSQL(t, leader, "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)")
			for i := 0; i < 20; i++ {
				execSQL(t, leader, "INSERT INTO foo(name) VALUES('x')")
			}
			var victim *testNode
			for _, n := range nodes {
				if n != leader {
					victim = n
				}
			}
			waitRows(t, victim, "foo", 20)
			oldID := victim.s.RaftID()
			victim.stop()
			if damage == "database" {
				flipByte(t, filepath.Join(victim.dir, "db.sqlite"), 200)
			} else {
				flipByte(t, lastSegment(t, victim.dir), 3)
			}
			victim.start()
			if victim.s.RaftID() == oldID {
				t.Fatal("the damaged node kept its Raft ID")
			}
			if aside, _ := filepath.Glob(filepath.Join(victim.dir, "*.damaged-*")); len(aside) == 0 {
				t.Error("the damaged data was not kept aside")
			}
			waitRows(t, victim, "foo", 20)
			waitVoters(t, nodes, 3)
			execSQL(t, leaderOf(t, nodes...), "INSERT INTO foo(name) VALUES('after')")
			waitRows(t, victim, "foo", 21)
		})
	}
}

// The only voter of a cluster cannot recover from peers: it refuses to start, rather than start empty.
func TestDamagedSingleNodeRefusesToStart(t *testing.T) {
	n := newTestNode(t, "n1", nil)
	leaderOf(t, n)
	execSQL(t, n, "CREATE TABLE foo (x)")
	n.stop()
	flipByte(t, filepath.Join(n.dir, "db.sqlite"), 200)
	cfg := n.cfg
	cfg.Listener = mustListen(t, n.addr)
	s, err := Open(cfg)
	if err == nil {
		s.Close(context.Background())
		t.Fatal("a damaged single node started")
	}
	if !strings.Contains(err.Error(), "only voter") || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("error: %v", err)
	}
	if _, err := os.Stat(filepath.Join(n.dir, "db.sqlite")); err != nil {
		t.Errorf("the data must be left in place: %v", err)
	}
}
