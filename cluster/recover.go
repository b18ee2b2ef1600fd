package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/internal/fsync"
	"github.com/raftlite/raftlite/raftlog"
)

// A node whose data is damaged must neither serve it nor vote or count toward a quorum with it: a log
// that lost a whole record may have lost entries (or a vote) it acknowledged, and a database file that
// changed while the node was stopped is not what the log describes. Such a node sets its data aside and
// rejoins under a new Raft ID, exactly as a node whose data directory was deleted does, and gets the data
// back from its peers. A node that was its cluster's only voter has no peers to recover from; it refuses
// to start, and says so.

// OpenData loads (or creates) the data directory's Raft ID and opens its Raft log, checking the node's
// data (the log, and the database file at dbPath) and recovering (see above) if it is damaged: the Raft ID
// returned is then a new one.
func OpenData(dataDir, dbPath string, logger *slog.Logger) (*raftlog.Log, uint64, error) {
	raftID, err := loadOrCreateRaftID(dataDir)
	if err != nil {
		return nil, 0, err
	}
	dir := filepath.Join(dataDir, "raft")
	rlog, err := raftlog.Open(dir, raftlog.Options{Logger: logger})
	var damage string
	switch {
	case errors.Is(err, raftlog.ErrCorrupt):
		damage = err.Error()
	case err != nil:
		return nil, 0, err
	case rlog.Repaired().Corrupt:
		damage = "its Raft log was damaged: " + rlog.Repaired().Reason
	}
	if ferr := db.VerifyFingerprint(dbPath); errors.Is(ferr, db.ErrDamaged) {
		damage = ferr.Error()
	} else if ferr != nil {
		if rlog != nil {
			rlog.Close()
		}
		return nil, 0, ferr
	}
	if damage == "" {
		return rlog, raftID, nil
	}
	if rlog != nil {
		if Fresh(rlog) {
			// The node never held any of the cluster's data (it was still joining): there is nothing to
			// recover. It starts fresh; the damaged database is set aside as an orphan.
			logger.Warn("damaged data on a node that holds none of the cluster's data yet: starting fresh", "damage", damage)
			return rlog, raftID, nil
		}
	}
	voters := -1
	if rlog != nil {
		voters = lastKnownVoters(rlog)
		rlog.Close()
	}
	if voters == -1 {
		voters = membersInDB(dbPath)
	}
	if voters <= 1 {
		return nil, 0, fmt.Errorf("this node's data is damaged (%s), and it cannot recover it from peers: it was the only voter of its cluster (or its peers cannot be known). Restore a backup with /boot, or delete the data directory to start an empty cluster", damage)
	}
	aside, err := setAside(dataDir, dbPath)
	if err != nil {
		return nil, 0, fmt.Errorf("data damaged (%s); setting it aside failed: %w", damage, err)
	}
	logger.Error("this node's data is damaged: set aside, rejoining the cluster as a new member to recover it from its peers",
		"damage", damage, "moved_to", aside)
	if raftID, err = loadOrCreateRaftID(dataDir); err != nil {
		return nil, 0, err
	}
	rlog, err = raftlog.Open(dir, raftlog.Options{Logger: logger})
	return rlog, raftID, err
}

// Fresh reports whether the Raft log is empty: the node has never been part of a cluster.
func Fresh(l *raftlog.Log) bool {
	hs, _, _ := l.InitialState()
	last, _ := l.LastIndex()
	snap, _ := l.Snapshot()
	return raft.IsEmptyHardState(hs) && last == 0 && snap.GetMetadata().GetIndex() == 0
}

// setAside renames the Raft log, the database and the Raft ID out of the way, keeping them for inspection.
func setAside(dataDir, dbPath string) (string, error) {
	suffix := ".damaged-" + time.Now().UTC().Format("20060102T150405")
	for _, p := range []string{filepath.Join(dataDir, "raft"), dbPath, dbPath + "-wal", dbPath + "-shm",
		dbPath + ".check", filepath.Join(dataDir, raftIDFile)} {
		if err := os.Rename(p, p+suffix); err != nil && !os.IsNotExist(err) {
			return "", err
		}
	}
	return filepath.Join(dataDir, "*"+suffix), fsync.Path(dataDir)
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

// membersInDB counts the members the database at path knows, or -1 if it cannot be read.
func membersInDB(path string) int {
	st, err := db.Inspect(path)
	m := NewMembership()
	if err != nil || len(st.Membership) == 0 || m.Load(st.Membership) != nil {
		return -1
	}
	return len(m.List())
}
