package store

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/raftlite/raftlite/backup"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/errcode"
)

// AutoRestore is an -auto-restore file and its storage client.
type AutoRestore struct {
	Config  *backup.RestoreConfig
	Storage backup.Storage
}

// leftoverPatterns are the temporary files of backups and restores in the data directory; a crash can
// leave them behind, and nothing else uses them once the node restarts.
var leftoverPatterns = []string{"auto-restore-*", "upload-*", "backup-*.db"}

func removeLeftovers(dataDir string) {
	for _, p := range leftoverPatterns {
		matches, _ := filepath.Glob(filepath.Join(dataDir, p))
		for _, m := range matches {
			os.Remove(m)
		}
	}
}

// hasData reports whether the node holds data of its cluster: its database has applied a request or a
// load, or its log holds entries it has not applied yet (which may be requests). A node of a cluster that
// was formed but never written to has none, so a restore interrupted by a crash is tried again.
func (s *Store) hasData() bool {
	st := s.db.State()
	last, _ := s.rlog.LastIndex()
	return st.DataIndex > 0 || last > st.AppliedIndex
}

// prepareRestore downloads the backup, before the node serves anything, if the node has no data. The
// file is installed by finishRestore once a leader is known.
func (s *Store) prepareRestore(r *AutoRestore) error {
	if s.hasData() {
		backup.Stats.AutoRestoresSkipped.Add(1)
		s.log.Info("auto-restore requested, but data already exists in the data directory, skipping", "dir", s.cfg.DataDir)
		return nil
	}
	dest := r.Storage.Destination(r.Storage.Name())
	s.log.Info("auto-restore requested, initiating download", "from", dest)
	start := time.Now()
	path, err := backup.Download(context.Background(), r.Config, r.Storage, s.cfg.DataDir)
	if err == nil {
		if _, ierr := db.Inspect(path); ierr != nil {
			os.Remove(path)
			err = fmt.Errorf("the backup downloaded from %s is not a usable SQLite database: %w", dest, ierr)
		}
	}
	if err != nil {
		backup.Stats.AutoRestoresFailed.Add(1)
		if r.Config.ContinueOnFailure {
			s.log.Warn("failed to download auto-restore file, continuing with node startup anyway (continue_on_failure)", "err", err)
			return nil
		}
		return fmt.Errorf("failed to download auto-restore file: %w (set \"continue_on_failure\": true in the auto-restore file to start empty instead)", err)
	}
	s.log.Info("auto-restore file downloaded", "from", dest, "duration", time.Since(start).Round(time.Millisecond).String())
	s.restorePath.Store(&path)
	return nil
}

// errRestoring refuses writes on the leader while it has a backup to install: a write first would make
// the cluster hold data, and the restore would then (rightly) not overwrite it.
var errRestoring error = errcode.New(errcode.NotOpen, "store not ready: auto-restore in progress (writes are taken once the backup is installed)")

// restorePending reports a downloaded backup not yet installed or given up: the node is not ready.
func (s *Store) restorePending() bool { return s.restorePath.Load() != nil }

// finishRestore installs the downloaded backup if this node is the first leader it sees and the cluster
// holds no data: through the log as a load (every node gets it), or, on a cluster of this node alone,
// as a boot (no size limit; nodes added later get it as a snapshot). If another node leads, that node
// restores, or the cluster had data, and this node lets the file go. Either way it then becomes ready.
func (s *Store) finishRestore(ctx context.Context, r *AutoRestore) {
	pathp := s.restorePath.Load()
	path := *pathp
	defer func() {
		os.Remove(path)
		s.restorePath.Store(nil)
	}()
	for ctx.Err() == nil {
		done, err := s.tryRestore(ctx, path)
		if done {
			return
		}
		if err != nil && !isRetryable(err) {
			backup.Stats.AutoRestoresFailed.Add(1)
			if r.Config.ContinueOnFailure {
				s.log.Error("auto-restore failed, continuing with the cluster's data as it is (continue_on_failure)", "err", err)
				return
			}
			s.fail(fmt.Errorf("auto-restore failed: %w (set \"continue_on_failure\": true in the auto-restore file to go on without it)", err))
			return
		}
		if err != nil {
			s.log.Warn("auto-restore interrupted; trying again once a leader is known", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tryRestore makes one attempt; done reports that there is nothing more to do.
func (s *Store) tryRestore(ctx context.Context, path string) (done bool, err error) {
	leader := s.node.Leader()
	if leader == 0 {
		return false, nil
	}
	if leader != s.cluster.RaftID() {
		backup.Stats.AutoRestoresSkipped.Add(1)
		s.log.Info("different node became leader, not performing auto-restore")
		return true, nil
	}
	// Everything committed so far applied here first: the cluster's data as of now.
	idx, err := s.node.ReadIndex(ctx)
	if err != nil {
		return false, err
	}
	if err := s.applied.Wait(ctx, idx); err != nil {
		return false, err
	}
	if s.DataIndex() > 0 {
		backup.Stats.AutoRestoresSkipped.Add(1)
		s.log.Warn("this node leads a cluster that holds data already: not auto-restoring over it", "data_index", s.DataIndex())
		return true, nil
	}
	s.log.Info("this node is now leader, auto-restoring", "from", path)
	if len(s.cluster.Members().List()) == 1 {
		err = s.fsm.Boot(ctx, path)
	} else {
		err = s.loadFile(ctx, path)
	}
	if err != nil {
		return false, err
	}
	backup.Stats.AutoRestores.Add(1)
	s.log.Info("node auto-restored successfully", "data_index", s.DataIndex())
	return true, nil
}

// loadFile replicates the SQLite file at path as a load (compressed in memory; the log bounds its size).
func (s *Store) loadFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var buf limitedBuffer
	buf.limit = maxLoadSize
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := io.Copy(zw, f); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	_, err = s.load(ctx, buf.b)
	return err
}

// limitedBuffer collects bytes up to limit, then refuses more with ErrLoadTooLarge.
type limitedBuffer struct {
	b     []byte
	limit int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(l.b)+len(p) > l.limit {
		return 0, fmt.Errorf("%w; restore it into a single node (start that node alone with -auto-restore), then add the others", ErrLoadTooLarge)
	}
	l.b = append(l.b, p...)
	return len(p), nil
}

// isRetryable tells a restore interrupted by a change of leader, to try again, from one that cannot work.
func isRetryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeaderLost) || errors.Is(err, ErrOutcomeUnknown) ||
		errors.Is(err, ErrNoLeader) || errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrNotSingleNode)
}
