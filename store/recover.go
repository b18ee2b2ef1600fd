package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/raftlog"
)

// A node whose data is damaged must neither serve it nor vote or count toward a quorum with it: a log
// that lost a whole record may have lost entries (or a vote) it acknowledged, and a database file that
// changed while the node was stopped is not what the log describes. Such a node sets its data aside and
// rejoins under a new Raft ID, exactly as a node whose data directory was deleted does, and gets the data
// back from its peers. A node that was its cluster's only voter has no peers to recover from; it refuses
// to start, and says so.

// openLog opens the Raft log and checks the node's data, recovering (see above) if it is damaged.
func (s *Store) openLog() error {
	dir := filepath.Join(s.cfg.DataDir, "raft")
	rlog, err := raftlog.Open(dir, raftlog.Options{Logger: s.log})
	var damage string
	switch {
	case errors.Is(err, raftlog.ErrCorrupt):
		damage = err.Error()
	case err != nil:
		return err
	case rlog.Repaired().Corrupt:
		damage = "its Raft log was damaged: " + rlog.Repaired().Reason
	}
	if ferr := db.VerifyFingerprint(s.dbPath()); errors.Is(ferr, db.ErrDamaged) {
		damage = ferr.Error()
	} else if ferr != nil {
		if rlog != nil {
			rlog.Close()
		}
		return ferr
	}
	if damage == "" {
		s.rlog = rlog
		return nil
	}
	if rlog != nil {
		if s.rlog = rlog; s.fresh() {
			// The node never held any of the cluster's data (it was still joining): there is nothing to
			// recover. It starts fresh; the damaged database is set aside as an orphan.
			s.log.Warn("damaged data on a node that holds none of the cluster's data yet: starting fresh", "damage", damage)
			return nil
		}
		s.rlog = nil
	}
	voters := -1
	if rlog != nil {
		voters = lastKnownVoters(rlog)
		rlog.Close()
	}
	if voters == -1 {
		voters = s.membersInDB()
	}
	if voters <= 1 {
		return fmt.Errorf("this node's data is damaged (%s), and it cannot recover it from peers: it was the only voter of its cluster (or its peers cannot be known). Restore a backup with /boot, or delete the data directory to start an empty cluster", damage)
	}
	aside, err := s.setAside()
	if err != nil {
		return fmt.Errorf("data damaged (%s); setting it aside failed: %w", damage, err)
	}
	s.log.Error("this node's data is damaged: set aside, rejoining the cluster as a new member to recover it from its peers",
		"damage", damage, "moved_to", aside)
	if s.raftID, err = loadOrCreateRaftID(s.cfg.DataDir); err != nil {
		return err
	}
	s.rlog, err = raftlog.Open(dir, raftlog.Options{Logger: s.log})
	return err
}

// setAside renames the Raft log, the database and the Raft ID out of the way, keeping them for inspection.
func (s *Store) setAside() (string, error) {
	suffix := ".damaged-" + time.Now().UTC().Format("20060102T150405")
	for _, p := range []string{filepath.Join(s.cfg.DataDir, "raft"), s.dbPath(), s.dbPath() + "-wal", s.dbPath() + "-shm",
		s.dbPath() + ".check", filepath.Join(s.cfg.DataDir, raftIDFile)} {
		if err := os.Rename(p, p+suffix); err != nil && !os.IsNotExist(err) {
			return "", err
		}
	}
	return filepath.Join(s.cfg.DataDir, "*"+suffix), syncPath(s.cfg.DataDir)
}

// lastKnownVoters counts the voters of the configuration the log ends with.
func lastKnownVoters(l *raftlog.Log) int {
	_, cs, err := l.InitialState()
	if err != nil {
		return -1
	}
	voters := map[uint64]bool{}
	for _, id := range cs.GetVoters() {
		voters[id] = true
	}
	first, _ := l.FirstIndex()
	last, _ := l.LastIndex()
	if first <= last {
		ents, err := l.Entries(first, last+1, 1<<62)
		if err != nil {
			return -1
		}
		for _, e := range ents {
			if e.GetType() != raftpb.EntryConfChange && e.GetType() != raftpb.EntryConfChangeV2 {
				continue
			}
			_, changes, _, err := decodeConfChange(e)
			if err != nil {
				continue
			}
			for _, c := range changes {
				switch c.GetType() {
				case raftpb.ConfChangeAddNode:
					voters[c.GetNodeId()] = true
				case raftpb.ConfChangeRemoveNode, raftpb.ConfChangeAddLearnerNode:
					delete(voters, c.GetNodeId())
				}
			}
		}
	}
	if len(voters) == 0 && last == 0 {
		return -1 // an empty log knows nothing
	}
	return len(voters)
}

// membersInDB counts the members the database knows, or -1 if it cannot be read.
func (s *Store) membersInDB() int {
	st, err := db.Inspect(s.dbPath())
	m := newMembership()
	if err != nil || len(st.Membership) == 0 || m.load(st.Membership) != nil {
		return -1
	}
	return len(m.list())
}
