package cluster

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/raftlite/raftlite/internal/fsync"
)

// raftIDFile holds this data directory's Raft ID. The ID is random and belongs to the data, not to the
// node-id: a node whose directory is wiped comes back under a new Raft ID, so it can never be mistaken
// for a member that voted or acknowledged entries it has since lost.
const raftIDFile = "raft-id"

func loadOrCreateRaftID(dir string) (uint64, error) {
	path := filepath.Join(dir, raftIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 64)
		if perr != nil || id == 0 {
			return 0, fmt.Errorf("read Raft ID from %s: invalid content %q", path, strings.TrimSpace(string(b)))
		}
		return id, nil
	}
	if !os.IsNotExist(err) {
		return 0, fmt.Errorf("read Raft ID: %w", err)
	}
	id := newRaftID()
	if err := writeIDFile(dir, raftIDFile, id); err != nil {
		return 0, fmt.Errorf("write Raft ID: %w", err)
	}
	return id, nil
}

// writeIDFile stores id in hex in dir/name, atomically and durably.
func writeIDFile(dir, name string, id uint64) error {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(id, 16)+"\n"), 0o600); err != nil {
		return err
	}
	if err := fsync.Path(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return fsync.Path(dir)
}

// newRaftID returns a random ID that raft accepts: non-zero and below its reserved local IDs.
func newRaftID() uint64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		id := binary.LittleEndian.Uint64(b[:]) >> 1 // clear the top bit: far from raft's reserved MaxUint64-1
		if id != 0 {
			return id
		}
	}
}

// SetAsideOrphanedDB moves away a database file found without a Raft log: its contents did not come from
// the cluster this node is about to join or create, so applying the cluster's log on top of it would
// diverge. It is kept, renamed, rather than deleted.
func SetAsideOrphanedDB(path string) (string, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return "", nil
	}
	aside := fmt.Sprintf("%s.orphaned-%s", path, time.Now().UTC().Format("20060102T150405"))
	for _, suffix := range []string{"", "-wal", "-shm", ".check"} {
		if err := os.Rename(path+suffix, aside+suffix); err != nil && !os.IsNotExist(err) {
			return "", fmt.Errorf("set aside %s: %w", path+suffix, err)
		}
	}
	return aside, nil
}
