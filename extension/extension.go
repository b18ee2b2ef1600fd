package extension

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Set is the extensions a node loads, sorted by name: the order every connection loads them in.
type Set struct {
	Dir   string   // <data>/extensions
	Names []string // base names
	Paths []string // Dir/Name
	// Digest is a SHA-256 over the names and contents ("" for none): two nodes with the same digest load
	// the same code.
	Digest string
}

// maxLibrary bounds one extracted file: an archive that claims more is refused, not filled onto the disk.
const maxLibrary = 1 << 30

// Prepare empties <dataDir>/extensions and gathers into it what the comma-separated list names: a
// regular file (a library), a directory (its regular, non-hidden files; no recursion), a zip archive or
// a tar.gz archive (their files; an entry in a subdirectory is refused). Elements are told apart by
// their content, not their names. A later file of the same name replaces an earlier one.
func Prepare(list, dataDir string) (*Set, error) {
	dir := filepath.Join(dataDir, "extensions")
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("clear %s: %w", dir, err)
	}
	set := &Set{Dir: dir}
	if list == "" {
		return set, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	for _, p := range strings.Split(list, ",") {
		fi, err := os.Stat(p)
		if err != nil || p == "" {
			return nil, fmt.Errorf("extension path does not exist: %s", p)
		}
		if fi.IsDir() {
			err = fromDir(p, dir)
		} else {
			err = fromFile(p, dir)
		}
		if err != nil {
			return nil, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, e := range entries {
		set.Names = append(set.Names, e.Name())
	}
	slices.Sort(set.Names)
	for _, name := range set.Names {
		path := filepath.Join(dir, name)
		set.Paths = append(set.Paths, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	if len(set.Names) > 0 {
		set.Digest = hex.EncodeToString(h.Sum(nil))
	}
	return set, nil
}

func fromDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read extension directory %s: %w", src, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		err = write(dst, e.Name(), f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func fromFile(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	switch {
	case bytes.Equal(head, []byte("PK\x03\x04")):
		return fromZip(src, dst)
	case len(head) >= 3 && bytes.Equal(head[:3], []byte{0x1f, 0x8b, 0x08}):
		return fromTarGz(src, f, dst)
	}
	return write(dst, filepath.Base(src), f)
}

func fromZip(src, dst string) error {
	zr, err := zip.OpenReader(src)
	if err != nil {
		return fmt.Errorf("failed to load extensions from zip file %s: %w", src, err)
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() || strings.ContainsAny(zf.Name, `/\`) {
			return fmt.Errorf("failed to load extensions from zip file %s: zip file contains subdirectories (%s)", src, zf.Name)
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("failed to load extensions from zip file %s: %w", src, err)
		}
		err = write(dst, zf.Name, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("failed to load extensions from zip file %s: %w", src, err)
		}
	}
	return nil
}

func fromTarGz(src string, f io.Reader, dst string) error {
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("failed to load extensions from tar.gz file %s: %w", src, err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to load extensions from tar.gz file %s: %w", src, err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeDir || strings.ContainsAny(name, `/\`) {
			if name == "" || name == "." {
				continue
			}
			return fmt.Errorf("failed to load extensions from tar.gz file %s: tar.gz file contains subdirectories (%s)", src, hdr.Name)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := write(dst, name, tr); err != nil {
			return fmt.Errorf("failed to load extensions from tar.gz file %s: %w", src, err)
		}
	}
}

// write stores one library, refusing names that would land outside dst and files beyond maxLibrary.
func write(dst, name string, r io.Reader) error {
	if name == "" || name == "." || name == ".." || name != filepath.Base(name) {
		return fmt.Errorf("bad extension file name %q", name)
	}
	out, err := os.OpenFile(filepath.Join(dst, name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(r, maxLibrary+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxLibrary {
		err = fmt.Errorf("extension %s is larger than %d MiB", name, maxLibrary>>20)
	}
	return err
}
