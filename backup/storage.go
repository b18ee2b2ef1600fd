package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"
)

// Storage is where backups go and restores come from: one object (or file) name in one bucket (or
// directory). Every backup carries an ID, the data index of the database it holds, stored beside it as
// metadata, so that a node can tell whether the data it would upload is there already.
type Storage interface {
	// Upload stores the size bytes of f as name, with id as its metadata. f is read from its start.
	Upload(ctx context.Context, name string, f *os.File, size int64, id string) error
	// ID returns the ID stored with name, or ErrNoID if there is none (no object, or no metadata).
	ID(ctx context.Context, name string) (string, error)
	// Download writes the object name to w and returns how many bytes it wrote.
	Download(ctx context.Context, name string, w io.Writer) (int64, error)
	// Name is the configured object name: the key (s3), object name (gcs) or file name (file).
	Name() string
	// Destination describes name for logs and /status: s3://bucket/key, gs://bucket/name, dir:D, file:N.
	Destination(name string) string
}

// ErrNoID reports a backup without an ID: none uploaded yet, or uploaded by something else.
var ErrNoID = errors.New("no backup ID stored")

// IDMetadataKey names the metadata that carries a backup's ID. It is rqlite's, so that raftlite and rqlite
// recognise each other's uploads.
const IDMetadataKey = "x-rqlite-auto-backup-id"

// timestamped prefixes the last segment of name with the UTC time, as YYYYMMDDHHMMSS_: backups/db.sqlite
// becomes backups/20250102150405_db.sqlite.
func timestamped(name string, t time.Time) string {
	dir, file := path.Split(name)
	return dir + t.UTC().Format("20060102150405") + "_" + file
}

// NewBackupStorage makes the storage client of an -auto-backup file.
func NewBackupStorage(cfg *BackupConfig) (Storage, error) {
	return newStorage(cfg.Type, cfg.S3, cfg.GCS, cfg.File, true)
}

// NewRestoreStorage makes the storage client of an -auto-restore file.
func NewRestoreStorage(cfg *RestoreConfig) (Storage, error) {
	return newStorage(cfg.Type, cfg.S3, cfg.GCS, cfg.File, false)
}

func newStorage(typ string, s3 *S3Config, gcs *GCSConfig, file *FileConfig, writing bool) (Storage, error) {
	var st Storage
	var err error
	switch typ {
	case TypeS3:
		st, err = newS3(s3)
	case TypeGCS:
		st, err = newGCS(gcs)
	case TypeFile:
		st, err = newDir(file, writing)
	default:
		err = fmt.Errorf("unsupported storage type %q", typ)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to create storage client: %w", err)
	}
	return st, nil
}
