// Package fsync makes a file's or a directory's content durable (after a rename or a create, the
// directory must be synced too for the new name to survive a crash).
package fsync

import (
	"fmt"
	"os"
)

// Path fsyncs the file or directory at path.
func Path(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
