// Package testservers starts the real storage servers that the backup tests run against: versitygw, an
// S3 gateway that checks request signatures, and fake-gcs-server, an emulator of Google Cloud Storage's
// JSON API; and, as a stand-in, Google's OAuth token endpoint, which cannot run here (it checks the JWT a
// service account signs, as Google's does, and issues a token). scripts/test-deps.sh builds the two
// servers from the Go module proxy into $RAFTLITE_TOOLS/bin. Tests only.
package testservers

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tool finds a server binary: on PATH (make test puts $RAFTLITE_TOOLS/bin first), or in the tools cache.
func tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	dirs := []string{os.Getenv("RAFTLITE_TOOLS")}
	if cache, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(cache, "raftlite", "tools"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found on PATH or in the tools cache: run `make test-deps` (scripts/test-deps.sh builds it), or run the tests with `make test`", name)
	return ""
}

// FreeAddr returns a loopback address nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is one server process, which a test may stop and start again on the same address.
type process struct {
	t    testing.TB
	argv []string
	addr string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been waited for
}

func (p *process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.argv[0], err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(p.log)
			p.t.Fatalf("%s exited at start:\n%s", filepath.Base(p.argv[0]), b)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s does not listen on %s after 20s", filepath.Base(p.argv[0]), p.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (as a crash would).
func (p *process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.cmd.Process.Kill()
		<-p.exited
		p.cmd = nil
	}
}

// S3 is a running versitygw with a posix backend: every bucket is a directory of Root, every object a file.
type S3 struct {
	process
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string
	Root      string
}

// StartS3 starts versitygw with one account and an empty root; Bucket makes buckets.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := tool(t, "versitygw")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	s := &S3{Endpoint: "http://" + addr, AccessKey: "raftlitetestkey", SecretKey: "raftlite-test-secret-0123456789", Root: root}
	s.process = process{t: t, addr: addr, log: filepath.Join(dir, "versitygw.log"),
		argv: []string{bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "--quiet", "posix", root}}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Bucket creates a bucket.
func (s *S3) Bucket(t testing.TB, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.Root, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Object reads an object's bytes straight from the backend's files.
func (s *S3) Object(bucket, key string) ([]byte, error) {
	return os.ReadFile(filepath.Join(s.Root, bucket, filepath.FromSlash(key)))
}

// Keys lists the objects of a bucket under prefix, straight from the backend's files.
func (s *S3) Keys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	base := filepath.Join(s.Root, bucket)
	filepath.Walk(base, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, ".sgwtmp") || !strings.HasPrefix(rel, prefix) {
			return nil
		}
		keys = append(keys, rel)
		return nil
	})
	return keys
}

// GCS is a running fake-gcs-server (memory backend, plain HTTP).
type GCS struct {
	process
	Endpoint string
}

// StartGCS starts fake-gcs-server with the buckets given.
func StartGCS(t testing.TB, buckets ...string) *GCS {
	t.Helper()
	bin := tool(t, "fake-gcs-server")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(data, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	g := &GCS{Endpoint: "http://" + addr}
	g.process = process{t: t, addr: addr, log: filepath.Join(dir, "fake-gcs-server.log"),
		argv: []string{bin, "-scheme", "http", "-host", "127.0.0.1", "-port", port, "-backend", "memory", "-data", data,
			"-external-url", g.Endpoint, "-log-level", "warn"}}
	g.Start()
	t.Cleanup(g.Stop)
	return g
}
