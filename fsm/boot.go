package fsm

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/raftlite/raftlite/errcode"
	"github.com/raftlite/raftlite/internal/fsync"
)

// errBadLoad marks a LOAD entry whose bytes do not decompress: the same on every node.
var errBadLoad = errors.New("load: corrupt compressed database")

// gunzipTo writes the SQLite file a LOAD entry carries to path.
func gunzipTo(path string, gzipped []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(gzipped))
	if err == nil {
		_, err = io.Copy(f, zr)
		if err != nil && !isWriteError(err) {
			err = fmt.Errorf("%w: %v", errBadLoad, err)
		}
	} else {
		err = fmt.Errorf("%w: %v", errBadLoad, err)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// isWriteError tells a failing disk (to retry) from bad data (to refuse).
func isWriteError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// bootMarker exists while a booted database is in place but the log has not yet been compacted past it:
// until then, a node joining could be sent the log instead of the booted data.
func (s *FSM) bootMarker() string { return bootMarkerIn(s.cfg.DataDir) }

func bootMarkerIn(dataDir string) string { return filepath.Join(dataDir, "boot-pending") }

// bootPending reports whether a boot did not finish before the node stopped.
func bootPending(dataDir string) bool {
	_, err := os.Stat(bootMarkerIn(dataDir))
	return err == nil
}

type bootRequest struct {
	path string
	done chan error
}

// Boot replaces the database of a single-node cluster with the SQLite file at path, between two entries
// of the log, and compacts the log past it.
func (s *FSM) Boot(ctx context.Context, path string) error {
	r := bootRequest{path: path, done: make(chan error, 1)}
	select {
	case s.bootc <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopc:
		return errcode.ErrStopped
	}
	// Once the apply loop has the request it runs to the end: wait for it even past ctx, since returning
	// early would leave the caller deleting the file being booted.
	select {
	case err := <-r.done:
		return err
	case <-s.stopc:
		return errcode.ErrStopped
	}
}

// boot runs on the apply loop, between entries.
func (s *FSM) boot(path string) error {
	// Checked again here, in order with the log: a member added since the request was accepted would be
	// sent the log, not the booted data.
	if s.cfg.Members() != 1 {
		return errcode.ErrNotSingleNode
	}
	idx, term, _ := s.applied.Position()
	if err := os.WriteFile(s.bootMarker(), nil, 0o600); err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	if err := fsync.Path(s.cfg.DataDir); err != nil {
		return err
	}
	if err := s.db.Load(path, idx, term); err != nil {
		os.Remove(s.bootMarker())
		return fmt.Errorf("boot: %w", err)
	}
	return s.finishBoot()
}

// finishBoot compacts the log up to the booted database, so that a node added later gets it as a
// snapshot rather than the log that led to the old database, and drops the marker.
func (s *FSM) finishBoot() error {
	if err := s.compactAll(); err != nil {
		return fmt.Errorf("boot: compact log: %w", err)
	}
	if err := os.Remove(s.bootMarker()); err != nil && !os.IsNotExist(err) {
		return err
	}
	s.log.Info("booted database", "index", s.applied.Index())
	return nil
}
