package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/internal/testservers"
)

func writeTemp(t *testing.T, b []byte) (*os.File, int64) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "upload"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f, int64(len(b))
}

func s3Config(s *testservers.S3, bucket, key string) *S3Config {
	return &S3Config{Endpoint: s.Endpoint, Region: "us-east-1", AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey,
		Bucket: bucket, Path: key, ForcePathStyle: true}
}

// Against versitygw, which checks every request's signature.
func TestS3Storage(t *testing.T) {
	srv := testservers.StartS3(t)
	srv.Bucket(t, "bkt")
	st, err := newS3(s3Config(srv, "bkt", "dir/db.sqlite.gz"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if st.Destination("dir/db.sqlite.gz") != srv.Endpoint+"/bkt/dir/db.sqlite.gz" {
		t.Errorf("destination %q", st.Destination("dir/db.sqlite.gz"))
	}
	if _, err := st.ID(ctx, "dir/db.sqlite.gz"); !errors.Is(err, ErrNoID) {
		t.Fatalf("ID before any upload: %v", err)
	}
	data := bytes.Repeat([]byte("raftlite "), 1000)
	f, size := writeTemp(t, data)
	if err := st.Upload(ctx, "dir/db.sqlite.gz", f, size, "42"); err != nil {
		t.Fatal(err)
	}
	if id, err := st.ID(ctx, "dir/db.sqlite.gz"); err != nil || id != "42" {
		t.Fatalf("ID %q %v", id, err)
	}
	if stored, err := srv.Object("bkt", "dir/db.sqlite.gz"); err != nil || !bytes.Equal(stored, data) {
		t.Fatalf("stored object differs (%v)", err)
	}
	var got bytes.Buffer
	if n, err := st.Download(ctx, "dir/db.sqlite.gz", &got); err != nil || n != size || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("download: %d %v", n, err)
	}
	if _, err := st.Download(ctx, "nothing/here", &got); err == nil || !strings.Contains(err.Error(), "download from "+srv.Endpoint+"/bkt/nothing/here") {
		t.Errorf("download of a missing object: %v", err)
	}
}

// Files above singlePutMax go up as a multipart upload, a part at a time.
func TestS3StorageMultipart(t *testing.T) {
	srv := testservers.StartS3(t)
	srv.Bucket(t, "bkt")
	st, err := newS3(s3Config(srv, "bkt", "big"))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, singlePutMax+3<<20)
	rand.Read(data)
	f, size := writeTemp(t, data)
	if err := st.Upload(context.Background(), "big", f, size, "9"); err != nil {
		t.Fatal(err)
	}
	if stored, err := srv.Object("bkt", "big"); err != nil || !bytes.Equal(stored, data) {
		t.Fatalf("multipart object differs (%d bytes stored, %v)", len(stored), err)
	}
	if id, err := st.ID(context.Background(), "big"); err != nil || id != "9" {
		t.Fatalf("ID %q %v", id, err)
	}
}

// Credentials and the endpoint from the environment, as the AWS SDK's chain finds them.
func TestS3StorageFromEnvironment(t *testing.T) {
	srv := testservers.StartS3(t)
	srv.Bucket(t, "bkt")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint)
	t.Setenv("AWS_REGION", "eu-west-3")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	st, err := newS3(&S3Config{Bucket: "bkt", Path: "k", ForcePathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Destination("k") != srv.Endpoint+"/bkt/k" {
		t.Errorf("destination %q", st.Destination("k"))
	}
	f, size := writeTemp(t, []byte("SQLite format 3\x00"))
	// The gateway serves us-east-1 only: the region from the environment was used.
	if err := st.Upload(context.Background(), "k", f, size, "1"); err == nil || !strings.Contains(err.Error(), `region "eu-west-3" is wrong`) {
		t.Fatalf("upload signed for AWS_REGION's region: %v", err)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	if st, err = newS3(&S3Config{Bucket: "bkt", Path: "k", ForcePathStyle: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.Upload(context.Background(), "k", f, size, "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Object("bkt", "k"); err != nil {
		t.Fatal(err)
	}
}

func TestS3StorageErrors(t *testing.T) {
	srv := testservers.StartS3(t)
	srv.Bucket(t, "bkt")
	ctx := context.Background()
	f, size := writeTemp(t, []byte("data"))

	wrong := s3Config(srv, "bkt", "k")
	wrong.SecretAccessKey = "not-the-secret"
	st, _ := newS3(wrong)
	err := st.Upload(ctx, "k", f, size, "1")
	if err == nil || !strings.Contains(err.Error(), "upload to "+srv.Endpoint+"/bkt/k") || !strings.Contains(err.Error(), "check the access key") {
		t.Errorf("wrong secret: %v", err)
	}

	st, _ = newS3(s3Config(srv, "nosuchbucket", "k"))
	err = st.Upload(ctx, "k", f, size, "1")
	if err == nil || !strings.Contains(err.Error(), "NoSuchBucket") || !strings.Contains(err.Error(), "does the bucket exist?") {
		t.Errorf("missing bucket: %v", err)
	}

	// The server dies mid-upload: the connection is cut after part of the body.
	proxy := testservers.StartProxy(t, strings.TrimPrefix(srv.Endpoint, "http://"))
	cfg := s3Config(srv, "bkt", "k")
	cfg.Endpoint = "http://" + proxy.Addr
	st, _ = newS3(cfg)
	big, bigSize := writeTemp(t, bytes.Repeat([]byte("x"), 1<<20))
	proxy.CutAfter(64 << 10)
	if err := st.Upload(ctx, "k", big, bigSize, "2"); err == nil || proxy.Cuts() == 0 {
		t.Fatalf("upload through a cut connection: %v (cuts %d)", err, proxy.Cuts())
	}
	if _, err := srv.Object("bkt", "k"); err == nil {
		t.Error("a cut upload left an object")
	}
	proxy.CutAfter(0)
	if err := st.Upload(ctx, "k", big, bigSize, "2"); err != nil {
		t.Fatalf("upload once the server is back: %v", err)
	}

	// The server is gone.
	srv.Stop()
	st, _ = newS3(s3Config(srv, "bkt", "k"))
	if err := st.Upload(ctx, "k", f, size, "1"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("server down: %v", err)
	}
}
