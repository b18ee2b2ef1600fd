package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
)

var sqliteHeader = []byte("SQLite format 3\x00")

func (s *Shell) backup(args []string) error {
	if err := wantArgs(args, 1, 1, ".backup FILE"); err != nil {
		return err
	}
	return s.download(args[0], url.Values{}, "backup")
}

func (s *Shell) dump(args []string) error {
	if err := wantArgs(args, 1, 2, ".dump FILE [TABLE,...]"); err != nil {
		return err
	}
	q := url.Values{"fmt": {"sql"}}
	if len(args) == 2 {
		q.Set("tables", args[1])
	}
	return s.download(args[0], q, "dump")
}

// download streams /db/backup into path, through a temporary file so that a failed transfer leaves no
// half-written file under the name the user gave.
func (s *Shell) download(path string, q url.Values, what string) error {
	ctx, done := s.operation()
	defer done()
	resp, err := s.c.do(ctx, request{method: http.MethodGet, path: "/db/backup", query: q, stream: true})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer os.Remove(tmp.Name())
	bar := s.newProgress(what, resp.ContentLength)
	n, err := io.Copy(tmp, bar.reader(resp.Body))
	bar.finish(err == nil)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%s to %s: %w", what, path, err)
	}
	fmt.Fprintf(s.out, "%s written to %s (%s)\n", what, path, byteSize(n))
	return nil
}

// restore sends a SQLite file or SQL text to /db/load, which replaces the database through the log.
func (s *Shell) restore(args []string) error {
	if err := wantArgs(args, 1, 1, ".restore FILE"); err != nil {
		return err
	}
	isSQLite, size, err := inspectFile(args[0])
	if err != nil {
		return err
	}
	contentType := "text/plain"
	if isSQLite {
		contentType = "application/octet-stream"
	}
	ctx, done := s.operation()
	defer done()
	resp, err := s.upload(ctx, args[0], size, "/db/load", contentType, "restore")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	if !isSQLite {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		r, err := decodeResponse(b)
		if err != nil {
			return err
		}
		if r.Error != "" {
			return errors.New(r.Error)
		}
		for _, res := range r.Results {
			if res.Error != "" {
				return fmt.Errorf("restore failed, nothing was changed: %s", res.Error)
			}
		}
	}
	fmt.Fprintln(s.out, "database restored")
	return nil
}

func (s *Shell) boot(args []string) error {
	if err := wantArgs(args, 1, 1, ".boot FILE"); err != nil {
		return err
	}
	isSQLite, size, err := inspectFile(args[0])
	if err != nil {
		return err
	}
	if !isSQLite {
		return fmt.Errorf("%s is not a SQLite database (use .restore for SQL text)", args[0])
	}
	ctx, done := s.operation()
	defer done()
	resp, err := s.upload(ctx, args[0], size, "/boot", "application/octet-stream", "boot")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	fmt.Fprintln(s.out, "node booted")
	return nil
}

func inspectFile(path string) (isSQLite bool, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, 0, err
	}
	head := make([]byte, len(sqliteHeader))
	n, _ := io.ReadFull(f, head)
	return bytes.Equal(head[:n], sqliteHeader), fi.Size(), nil
}

// upload streams a file as a request body, with a progress bar. It is sent to one node only: a load that
// broke off midway may or may not have been applied.
func (s *Shell) upload(ctx context.Context, path string, size int64, endpoint, contentType, what string) (*http.Response, error) {
	bar := s.newProgress(what, size)
	var ok bool
	defer func() { bar.finish(ok) }()
	resp, err := s.c.do(ctx, request{method: http.MethodPost, path: endpoint, contentType: contentType, stream: true,
		size: size, body: func() (io.ReadCloser, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			bar.reset()
			return struct {
				io.Reader
				io.Closer
			}{bar.reader(f), f}, nil
		}})
	ok = err == nil
	return resp, err
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
