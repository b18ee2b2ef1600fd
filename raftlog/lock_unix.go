//go:build unix

package raftlog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on the directory itself, so two processes (or two Logs in one
// process) appending to the same log fail fast instead of interleaving records. No lock file is needed.
func lockDir(dirf *os.File) error {
	err := syscall.Flock(int(dirf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("raft log dir %s is in use by another process or Log", dirf.Name())
	}
	if err != nil {
		return fmt.Errorf("lock raft log dir %s: %w", dirf.Name(), err)
	}
	return nil
}
