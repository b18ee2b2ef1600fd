package db

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// A fingerprint (size and CRC-32C of the database file) is written when the database closes cleanly and
// checked before it is opened again: a file changed while the node was stopped (a damaged disk, or a tool
// writing to it) would otherwise be served, and replicated on, as if it were the cluster's data. It is
// removed once checked, so that a crash never leaves a stale one behind.

type fingerprint struct {
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

func fingerprintPath(db string) string { return db + ".check" }

// ErrDamaged reports a database file that changed while the node was stopped.
var ErrDamaged = errors.New("database file damaged")

func fileCRC(path string) (fingerprint, error) {
	f, err := os.Open(path)
	if err != nil {
		return fingerprint{}, err
	}
	defer f.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.Copy(h, f)
	if err != nil {
		return fingerprint{}, err
	}
	return fingerprint{Size: n, CRC32C: h.Sum32()}, nil
}

// writeFingerprint records the file as it is now. Called only once every connection is closed and the
// WAL has been folded into the file.
func writeFingerprint(path string) error {
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return nil // not fully checkpointed: nothing to vouch for
	}
	fp, err := fileCRC(path)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(fp)
	tmp := fingerprintPath(path) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, fingerprintPath(path))
}

// VerifyFingerprint checks the database file at path against the fingerprint its last clean close left,
// and removes the fingerprint. No fingerprint (a first start, or a crash) is not an error.
func VerifyFingerprint(path string) error {
	b, err := os.ReadFile(fingerprintPath(path))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read fingerprint of %s: %w", path, err)
	}
	defer os.Remove(fingerprintPath(path))
	var want fingerprint
	if err := json.Unmarshal(b, &want); err != nil {
		return fmt.Errorf("%w: fingerprint of %s is unreadable", ErrDamaged, path)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		return fmt.Errorf("%w: %s was written to while the node was stopped (its WAL is not empty)", ErrDamaged, path)
	}
	got, err := fileCRC(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if got != want {
		return fmt.Errorf("%w: %s has changed since the node stopped (size %d, CRC-32C %08x; it was %d, %08x)",
			ErrDamaged, path, got.Size, got.CRC32C, want.Size, want.CRC32C)
	}
	return nil
}
