package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/internal/testservers"
)

// Against fake-gcs-server (Cloud Storage's JSON API) behind a proxy that admits only tokens issued by the
// stand-in token endpoint, which checks the service account's signed JWT.
func TestGCSStorage(t *testing.T) {
	gcs := testservers.StartGCS(t, "bkt")
	tokens := testservers.StartTokenServer(t)
	endpoint := tokens.Guard(t, gcs.Endpoint)
	st, err := newGCS(&GCSConfig{Endpoint: endpoint, ProjectID: "p", Bucket: "bkt", Name: "backups/db.sqlite", CredentialsPath: tokens.CredentialsFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if st.Destination("backups/db.sqlite") != "gs://bkt/backups/db.sqlite" {
		t.Errorf("destination %q", st.Destination("backups/db.sqlite"))
	}
	if _, err := st.ID(ctx, "backups/db.sqlite"); !errors.Is(err, ErrNoID) {
		t.Fatalf("ID before any upload: %v", err)
	}
	data := bytes.Repeat([]byte("gcs backup "), 5000)
	f, size := writeTemp(t, data)
	if err := st.Upload(ctx, "backups/db.sqlite", f, size, "17"); err != nil {
		t.Fatal(err)
	}
	if id, err := st.ID(ctx, "backups/db.sqlite"); err != nil || id != "17" {
		t.Fatalf("ID %q %v", id, err)
	}
	var got bytes.Buffer
	if n, err := st.Download(ctx, "backups/db.sqlite", &got); err != nil || n != size || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("download: %d %v", n, err)
	}
	if tokens.Grants() != 1 {
		t.Errorf("%d tokens requested, want 1 (cached for its hour)", tokens.Grants())
	}
	if _, err := st.Download(ctx, "missing", &got); err == nil || !strings.Contains(err.Error(), "download from gs://bkt/missing: download failed: 404") {
		t.Errorf("missing object: %v", err)
	}
	st2, _ := newGCS(&GCSConfig{Endpoint: endpoint, Bucket: "nosuchbucket", Name: "x", CredentialsPath: tokens.CredentialsFile})
	if err := st2.Upload(ctx, "x", f, size, "1"); err == nil || !strings.Contains(err.Error(), "upload to gs://nosuchbucket/x: upload failed: 404") {
		t.Errorf("missing bucket: %v", err)
	}
}

func TestGCSCredentialErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "missing.json"):                                  `read "credentials_path"`,
		write("notjson.json", "hello"):                                      "is not a service account key",
		write("user.json", `{"type":"authorized_user"}`):                    "lacks client_email or private_key",
		write("badkey.json", `{"client_email":"a@b","private_key":"nope"}`): "private_key is not PEM",
	} {
		if _, err := newGCS(&GCSConfig{Bucket: "b", Name: "n", CredentialsPath: path}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", filepath.Base(path), err, want)
		}
	}
	// A key the token endpoint does not know: the error names the endpoint and says what it answered.
	tokens := testservers.StartTokenServer(t)
	other := testservers.StartTokenServer(t)
	creds, _ := os.ReadFile(other.CredentialsFile)
	mixed := write("mixed.json", strings.Replace(string(creds), other.URL, tokens.URL, 1))
	st, err := newGCS(&GCSConfig{Endpoint: "http://127.0.0.1:1", Bucket: "b", Name: "n", CredentialsPath: mixed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ID(context.Background(), "n"); err == nil || !strings.Contains(err.Error(), "get an access token from "+tokens.URL) ||
		!strings.Contains(err.Error(), "Invalid JWT Signature") {
		t.Errorf("unknown key: %v", err)
	}
}
