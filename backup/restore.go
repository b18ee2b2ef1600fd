package backup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// sqliteHeader begins every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// gzipMagic begins a gzip stream (with the deflate method).
var gzipMagic = []byte{0x1f, 0x8b, 0x08}

// ErrNotSQLite reports a downloaded backup that is not a SQLite database, compressed or not.
var ErrNotSQLite = errors.New("not a SQLite database")

// Download fetches the backup an -auto-restore file names into a new file in dir and returns its path: a
// plain SQLite database, decompressed if the backup was gzipped (told by its first bytes, not its name).
// The whole download is bounded by the file's timeout. The caller removes the file.
func Download(ctx context.Context, cfg *RestoreConfig, storage Storage, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	path, n, err := download(ctx, storage, dir)
	Stats.DownloadBytes.Add(n)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("%w (the download took longer than the auto-restore file's timeout, %s)", err, cfg.Timeout)
		}
		return "", fmt.Errorf("failed to download from %s: %w", storage.Destination(storage.Name()), err)
	}
	return path, nil
}

func download(ctx context.Context, storage Storage, dir string) (string, int64, error) {
	raw, err := os.CreateTemp(dir, "auto-restore-download-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(raw.Name())
	defer raw.Close()
	// The download counters count transfers; a transfer of a damaged backup is a successful download.
	n, err := storage.Download(ctx, storage.Name(), raw)
	if err != nil {
		Stats.DownloadsFail.Add(1)
		return "", n, err
	}
	Stats.DownloadsOK.Add(1)
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return "", n, err
	}
	out, err := os.CreateTemp(dir, "auto-restore-*.db")
	if err != nil {
		return "", n, err
	}
	if err := decode(out, raw); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", n, err
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		return "", n, err
	}
	return out.Name(), n, nil
}

// decode writes the database in r to w, decompressing it if it is gzipped, and checks that it begins as
// a SQLite file does. A truncated gzip stream fails here, by its checksum and length trailer.
func decode(w io.Writer, r io.Reader) error {
	br := bufio.NewReader(r)
	head, _ := br.Peek(len(gzipMagic))
	var src io.Reader = br
	if bytes.Equal(head, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("the backup is gzipped but damaged: %w", err)
		}
		src = zr
	}
	hdr := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(src, hdr); err != nil || !bytes.Equal(hdr, sqliteHeader) {
		if err != nil && src != io.Reader(br) {
			return fmt.Errorf("the backup is gzipped but damaged: %w", err)
		}
		return fmt.Errorf("the backup is %w (it does not begin as one does)", ErrNotSQLite)
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(w, src); err != nil {
		if src != io.Reader(br) {
			return fmt.Errorf("the backup is gzipped but damaged: %w", err)
		}
		return err
	}
	return nil
}
