package store

import (
	"context"
	"io"

	"github.com/raftlite/raftlite/db"
)

// DataIndex is the index of the last applied entry that could change the data (db.State.DataIndex).
func (s *Store) DataIndex() uint64 { return s.db.State().DataIndex }

// WriteBackup writes a consistent SQLite file of this node's database to w (the user's data only, in WAL
// mode, or compacted with VACUUM and in rollback-journal mode with vacuum) and returns the data index of
// what it wrote. Writes go on meanwhile. It serves the automatic backups (package backup).
func (s *Store) WriteBackup(ctx context.Context, w io.Writer, vacuum bool) (uint64, error) {
	st, err := s.db.BackupFile(ctx, w, db.BackupOptions{Format: db.BackupBinary, Vacuum: vacuum})
	return st.DataIndex, err
}
