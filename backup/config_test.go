package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBackupConfigAccepted(t *testing.T) {
	t.Setenv("BACKUP_SECRET", "s3cr3t")
	path := filepath.Join(t.TempDir(), "backup.json")
	os.WriteFile(path, []byte(`{"version":1,"type":"s3","interval":"5m","no_compress":true,"timestamp":true,"vacuum":true,
		"timeout":"1m","continue_on_failure":true,
		"sub":{"endpoint":"minio:9000","region":"region1","access_key_id":"id","secret_access_key":"$BACKUP_SECRET",
		"bucket":"bkt","path":"backups/db.sqlite","force_path_style":true}}`), 0o600)
	cfg, err := ReadBackupConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := S3Config{Endpoint: "minio:9000", Region: "region1", AccessKeyID: "id", SecretAccessKey: "s3cr3t",
		Bucket: "bkt", Path: "backups/db.sqlite", ForcePathStyle: true}
	if cfg.Interval != 5*time.Minute || !cfg.NoCompress || !cfg.Timestamp || !cfg.Vacuum || cfg.S3 == nil || *cfg.S3 != want {
		t.Fatalf("parsed %+v %+v", cfg, cfg.S3)
	}
	// The same file serves -auto-restore: its fields are read, the backup's ignored.
	rc, err := ReadRestoreConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Timeout != time.Minute || !rc.ContinueOnFailure || *rc.S3 != want {
		t.Fatalf("restore config %+v", rc)
	}
	// Durations as nanoseconds; restore's timeout defaults to 30 s.
	rc, err = parseRestoreConfig([]byte(`{"type":"file","sub":{"dir":"/b","name":"x.db"}}`))
	if err != nil || rc.Timeout != DefaultRestoreTimeout || rc.File.Dir != "/b" {
		t.Fatalf("%+v %v", rc, err)
	}
	bc, err := parseBackupConfig([]byte(`{"type":"gcs","interval":60000000000,"sub":{"bucket":"b","name":"n","credentials_path":"/c.json","project_id":"p"}}`))
	if err != nil || bc.Interval != time.Minute || bc.GCS.Name != "n" {
		t.Fatalf("%+v %v", bc, err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	s3sub := `"sub":{"bucket":"b","path":"p"}`
	cases := []struct{ json, want string }{
		{`[1]`, "not a JSON object"},
		{`{"type":"s3"`, "not a JSON object"},
		{`null`, "not a JSON object"},
		{`{"type":"s3","interval":"1m",` + s3sub + `} {}`, "more after the closing brace"},
		{`{"version":2,"type":"s3","interval":"1m",` + s3sub + `}`, "invalid version"},
		{`{"version":"one","type":"s3","interval":"1m",` + s3sub + `}`, "invalid version"},
		{`{"type":"azure","interval":"1m",` + s3sub + `}`, `unsupported storage type: "azure"`},
		{`{"type":3,"interval":"1m",` + s3sub + `}`, "unsupported storage type: 3"},
		{`{"interval":"1m",` + s3sub + `}`, `"type" is missing`},
		{`{"type":"s3",` + s3sub + `}`, `invalid interval: "interval" is missing`},
		{`{"type":"s3","interval":"0s",` + s3sub + `}`, "invalid interval"},
		{`{"type":"s3","interval":"-1m",` + s3sub + `}`, "invalid interval"},
		{`{"type":"s3","interval":"soon",` + s3sub + `}`, `time: invalid duration "soon"`},
		{`{"type":"s3","interval":true,` + s3sub + `}`, "must be a duration"},
		{`{"type":"s3","interval":"1m","intervall":"1m",` + s3sub + `}`, `unknown field "intervall"`},
		{`{"type":"s3","interval":"1m","no_compress":"yes",` + s3sub + `}`, `"no_compress" must be true or false`},
		{`{"type":"s3","interval":"1m"}`, `"sub" is missing`},
		{`{"type":"s3","interval":"1m","sub":{"bucket":"b"}}`, `"sub.path" is missing`},
		{`{"type":"s3","interval":"1m","sub":{"path":"p"}}`, `"sub.bucket" is missing`},
		{`{"type":"s3","interval":"1m","sub":{"bucket":"b","path":"p","secret_key":"x"}}`, `unknown field "secret_key"`},
		{`{"type":"s3","interval":"1m","sub":{"bucket":7,"path":"p"}}`, `"sub" (for type s3)`},
		{`{"type":"gcs","interval":"1m","sub":{"bucket":"b","name":"n"}}`, `"sub.credentials_path" is missing`},
		{`{"type":"file","interval":"1m","sub":{"dir":"rel/dir","name":"n"}}`, "directory path must be absolute"},
		{`{"type":"file","interval":"1m","sub":{"dir":"/d","name":"a/b"}}`, "invalid file parameter"},
		{`{"type":"file","interval":"1m","sub":{"dir":"/d","name":".."}}`, "invalid file parameter"},
	}
	for _, c := range cases {
		_, err := parseBackupConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.json, err, c.want)
		}
	}
	for _, c := range []struct{ json, want string }{
		{`{"type":"s3","timeout":"0s",` + s3sub + `}`, "invalid interval"},
		{`{"type":"s3","timeout":"-5s",` + s3sub + `}`, "invalid interval"},
		{`{"type":"s3","continue_on_failure":1,` + s3sub + `}`, `"continue_on_failure" must be true or false`},
		{`{"type":"s3","timout":"5s",` + s3sub + `}`, `unknown field "timout" (the fields are version, type, timeout, continue_on_failure, sub)`},
	} {
		_, err := parseRestoreConfig([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("restore %s:\n got %v\nwant %q", c.json, err, c.want)
		}
	}
	_, err := ReadBackupConfig(filepath.Join(t.TempDir(), "missing.json"))
	if err == nil || !strings.Contains(err.Error(), "failed to read auto-backup file") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(path, []byte(`{"type":"s3","interval":"1m"}`), 0o600)
	if _, err := ReadBackupConfig(path); err == nil || !strings.Contains(err.Error(), "failed to parse auto-backup file "+path) {
		t.Errorf("bad file: %v", err)
	}
}

func TestTimestampedNames(t *testing.T) {
	at := time.Date(2025, 1, 2, 15, 4, 5, 0, time.FixedZone("X", 3600))
	for in, want := range map[string]string{
		"backups/db.sqlite": "backups/20250102140405_db.sqlite",
		"db.sqlite.gz":      "20250102140405_db.sqlite.gz",
		"a/b/c":             "a/b/20250102140405_c",
	} {
		if got := timestamped(in, at); got != want {
			t.Errorf("timestamped(%q) = %q, want %q", in, got, want)
		}
	}
}
