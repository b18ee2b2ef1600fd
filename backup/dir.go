package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/raftlite/raftlite/internal/fsync"
)

// dirStorage keeps backups as files in a directory of this machine (a mounted volume, say). Beside them,
// METADATA.json names the last one and its ID.
type dirStorage struct {
	dir, name string
}

// metadataFile is the directory's record of its last backup.
const metadataFile = "METADATA.json"

type dirMetadata struct {
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"` // Unix milliseconds of the upload
	Name      string `json:"name"`      // the backup's absolute path
}

func newDir(c *FileConfig, writing bool) (*dirStorage, error) {
	d := &dirStorage{dir: c.Dir, name: c.Name}
	if !writing {
		return d, nil
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("file: create backup directory: %w", err)
	}
	// Find out now, not at the first backup, whether the directory takes files.
	touch := filepath.Join(c.Dir, ".touch")
	if err := os.WriteFile(touch, nil, 0o600); err != nil {
		return nil, fmt.Errorf("file: backup directory %s is not writable: %w", c.Dir, err)
	}
	os.Remove(touch)
	return d, nil
}

func (d *dirStorage) Name() string { return d.name }

func (d *dirStorage) Destination(name string) string { return "dir:" + d.dir + ", file:" + name }

// Upload copies f into a hidden temporary file, makes it durable, then renames it and the metadata into
// place: a reader of the directory sees the old backup or the new one, never half of one.
func (d *dirStorage) Upload(ctx context.Context, name string, f *os.File, size int64, id string) error {
	final := filepath.Join(d.dir, name)
	tmp, err := os.CreateTemp(d.dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("upload to %s: %w", d.Destination(name), err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, io.NewSectionReader(f, 0, size))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("upload to %s: %w", d.Destination(name), err)
	}
	meta, _ := json.Marshal(dirMetadata{ID: id, Timestamp: time.Now().UnixMilli(), Name: final})
	metaPath := filepath.Join(d.dir, metadataFile)
	if err := writeDurable(metaPath+".tmp", meta, 0o644); err != nil {
		return fmt.Errorf("upload to %s: write metadata: %w", d.Destination(name), err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		os.Remove(metaPath + ".tmp")
		return fmt.Errorf("upload to %s: %w", d.Destination(name), err)
	}
	if err := os.Rename(metaPath+".tmp", metaPath); err != nil {
		os.Remove(final)
		return fmt.Errorf("upload to %s: write metadata: %w", d.Destination(name), err)
	}
	if err := fsync.Path(d.dir); err != nil {
		return fmt.Errorf("upload to %s: %w", d.Destination(name), err)
	}
	return nil
}

func writeDurable(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(path, mode) // whatever the umask
	}
	return err
}

// ID reads the metadata file; the ID there belongs to the last upload, whatever its name.
func (d *dirStorage) ID(ctx context.Context, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(d.dir, metadataFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoID
	}
	if err != nil {
		return "", fmt.Errorf("read the backup ID in %s: %w", d.dir, err)
	}
	var m dirMetadata
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("read the backup ID in %s: %s is damaged: %w", d.dir, metadataFile, err)
	}
	if m.ID == "" {
		return "", ErrNoID
	}
	return m.ID, nil
}

func (d *dirStorage) Download(ctx context.Context, name string, w io.Writer) (int64, error) {
	f, err := os.Open(filepath.Join(d.dir, name))
	if err != nil {
		return 0, fmt.Errorf("download from %s: %w", d.Destination(name), err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return n, fmt.Errorf("download from %s: %w", d.Destination(name), err)
	}
	return n, nil
}
