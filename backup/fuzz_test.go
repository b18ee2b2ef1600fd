package backup

import "testing"

// The configuration parsers take an operator's file: nothing in it may crash the node.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"type":"s3","interval":"5m","sub":{"bucket":"b","path":"p"}}`,
		`{"type":"gcs","interval":1,"timeout":"1s","sub":{"bucket":"b","name":"n","credentials_path":"/c"}}`,
		`{"type":"file","interval":"1h","no_compress":true,"sub":{"dir":"/d","name":"n"}}`,
		`{"type":"s3","interval":9223372036854775807,"sub":null}`,
		`{"version":-1}`, `[]`, `null`, `{"sub":{"x":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if cfg, err := parseBackupConfig(b); err == nil && (cfg.Interval <= 0 || (cfg.S3 == nil && cfg.GCS == nil && cfg.File == nil)) {
			t.Fatalf("accepted an unusable backup config: %s", b)
		}
		if cfg, err := parseRestoreConfig(b); err == nil && (cfg.Timeout <= 0 || (cfg.S3 == nil && cfg.GCS == nil && cfg.File == nil)) {
			t.Fatalf("accepted an unusable restore config: %s", b)
		}
	})
}
