package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Storage types of the configuration files' "type" field.
const (
	TypeS3   = "s3"
	TypeGCS  = "gcs"
	TypeFile = "file"
)

// BackupConfig is an -auto-backup file.
type BackupConfig struct {
	Version    int
	Type       string
	Interval   time.Duration
	NoCompress bool
	Timestamp  bool
	Vacuum     bool
	S3         *S3Config
	GCS        *GCSConfig
	File       *FileConfig
}

// RestoreConfig is an -auto-restore file.
type RestoreConfig struct {
	Version           int
	Type              string
	Timeout           time.Duration
	ContinueOnFailure bool
	S3                *S3Config
	GCS               *GCSConfig
	File              *FileConfig
}

// S3Config is the "sub" object of type s3: AWS S3 or any S3-compatible store.
type S3Config struct {
	Endpoint        string `json:"endpoint"`
	Region          string `json:"region"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Bucket          string `json:"bucket"`
	Path            string `json:"path"`
	ForcePathStyle  bool   `json:"force_path_style"`
}

// GCSConfig is the "sub" object of type gcs.
type GCSConfig struct {
	Endpoint        string `json:"endpoint"`
	ProjectID       string `json:"project_id"`
	Bucket          string `json:"bucket"`
	Name            string `json:"name"`
	CredentialsPath string `json:"credentials_path"`
}

// FileConfig is the "sub" object of type file: a directory on this machine.
type FileConfig struct {
	Dir  string `json:"dir"`
	Name string `json:"name"`
}

// DefaultRestoreTimeout bounds a restore's download when the file gives no "timeout".
const DefaultRestoreTimeout = 30 * time.Second

// fileFields are the top-level fields of both files. A field of the other file is accepted and ignored,
// so that one file can serve both flags; any other field is refused, since a misspelt one (say
// "intervall") would otherwise be silently dropped.
var (
	backupFields  = []string{"version", "type", "interval", "no_compress", "timestamp", "vacuum", "sub"}
	restoreFields = []string{"version", "type", "timeout", "continue_on_failure", "sub"}
)

// ReadBackupConfig reads and checks an -auto-backup file. Environment variables in it ($VAR, ${VAR}) are
// expanded first, as rqlite does, so secrets can stay out of the file.
func ReadBackupConfig(path string) (*BackupConfig, error) {
	raw, err := readConfigFile(path, "auto-backup")
	if err != nil {
		return nil, err
	}
	cfg, err := parseBackupConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to parse auto-backup file %s: %w", path, err)
	}
	return cfg, nil
}

// ReadRestoreConfig reads and checks an -auto-restore file.
func ReadRestoreConfig(path string) (*RestoreConfig, error) {
	raw, err := readConfigFile(path, "auto-restore")
	if err != nil {
		return nil, err
	}
	cfg, err := parseRestoreConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to parse auto-restore file %s: %w", path, err)
	}
	return cfg, nil
}

func readConfigFile(path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s file: %w", what, err)
	}
	return []byte(os.ExpandEnv(string(b))), nil
}

func parseBackupConfig(raw []byte) (*BackupConfig, error) {
	fields, err := decodeObject(raw, backupFields, restoreFields)
	if err != nil {
		return nil, err
	}
	cfg := &BackupConfig{}
	if err := commonFields(fields, &cfg.Version, &cfg.Type); err != nil {
		return nil, err
	}
	iv, ok := fields["interval"]
	if !ok {
		return nil, errors.New(`invalid interval: "interval" is missing (how often to back up, e.g. "1h" or "5m")`)
	}
	if cfg.Interval, err = parseDuration(iv); err != nil {
		return nil, fmt.Errorf(`invalid interval: "interval": %w`, err)
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf(`invalid interval: "interval" must be positive, e.g. "1h" (got %s)`, cfg.Interval)
	}
	for name, dst := range map[string]*bool{"no_compress": &cfg.NoCompress, "timestamp": &cfg.Timestamp, "vacuum": &cfg.Vacuum} {
		if err := boolField(fields, name, dst); err != nil {
			return nil, err
		}
	}
	cfg.S3, cfg.GCS, cfg.File, err = parseSub(cfg.Type, fields["sub"])
	return cfg, err
}

func parseRestoreConfig(raw []byte) (*RestoreConfig, error) {
	fields, err := decodeObject(raw, restoreFields, backupFields)
	if err != nil {
		return nil, err
	}
	cfg := &RestoreConfig{Timeout: DefaultRestoreTimeout}
	if err := commonFields(fields, &cfg.Version, &cfg.Type); err != nil {
		return nil, err
	}
	if tv, ok := fields["timeout"]; ok {
		if cfg.Timeout, err = parseDuration(tv); err != nil {
			return nil, fmt.Errorf(`invalid interval: "timeout": %w`, err)
		}
		if cfg.Timeout <= 0 {
			return nil, fmt.Errorf(`invalid interval: "timeout" must be positive, e.g. "5m" (got %s)`, cfg.Timeout)
		}
	}
	if err := boolField(fields, "continue_on_failure", &cfg.ContinueOnFailure); err != nil {
		return nil, err
	}
	cfg.S3, cfg.GCS, cfg.File, err = parseSub(cfg.Type, fields["sub"])
	return cfg, err
}

// decodeObject decodes a JSON object into its fields, refusing fields that are neither the file's own nor
// the other file's.
func decodeObject(raw []byte, own, other []string) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if fields == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if dec.More() {
		return nil, errors.New("not a JSON object: more after the closing brace")
	}
	for name := range fields {
		if !contains(own, name) && !contains(other, name) {
			return nil, fmt.Errorf("unknown field %q (the fields are %s)", name, strings.Join(own, ", "))
		}
	}
	return fields, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func commonFields(fields map[string]json.RawMessage, version *int, typ *string) error {
	if v, ok := fields["version"]; ok {
		if err := json.Unmarshal(v, version); err != nil {
			return fmt.Errorf(`invalid version: "version" must be a whole number: %s`, v)
		}
		if *version > 1 || *version < 0 {
			return fmt.Errorf(`invalid version: %d (this raftlite reads version 1)`, *version)
		}
	}
	t, ok := fields["type"]
	if !ok {
		return fmt.Errorf(`unsupported storage type: "type" is missing (one of %q, %q or %q)`, TypeS3, TypeGCS, TypeFile)
	}
	if err := json.Unmarshal(t, typ); err != nil || (*typ != TypeS3 && *typ != TypeGCS && *typ != TypeFile) {
		return fmt.Errorf(`unsupported storage type: %s (one of %q, %q or %q)`, t, TypeS3, TypeGCS, TypeFile)
	}
	return nil
}

func boolField(fields map[string]json.RawMessage, name string, dst *bool) error {
	v, ok := fields[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("%q must be true or false, not %s", name, v)
	}
	return nil
}

// parseDuration reads a duration given as Go's text ("90s", "1h30m") or as a number of nanoseconds.
func parseDuration(v json.RawMessage) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return time.ParseDuration(s)
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&n); err == nil {
		if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return time.Duration(i), nil
		}
	}
	return 0, fmt.Errorf(`must be a duration such as "1h" or a number of nanoseconds, not %s`, v)
}

func parseSub(typ string, raw json.RawMessage) (*S3Config, *GCSConfig, *FileConfig, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil, fmt.Errorf(`"sub" is missing: it says where the %s backup is`, typ)
	}
	strict := func(dst any) error {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst); err != nil {
			return fmt.Errorf(`"sub" (for type %s): %s`, typ, strings.TrimPrefix(err.Error(), "json: "))
		}
		return nil
	}
	switch typ {
	case TypeS3:
		var c S3Config
		if err := strict(&c); err != nil {
			return nil, nil, nil, err
		}
		if c.Bucket == "" {
			return nil, nil, nil, errors.New(`"sub.bucket" is missing: the S3 bucket to use`)
		}
		if c.Path == "" {
			return nil, nil, nil, errors.New(`"sub.path" is missing: the object key of the backup, e.g. "backups/db.sqlite.gz"`)
		}
		return &c, nil, nil, nil
	case TypeGCS:
		var c GCSConfig
		if err := strict(&c); err != nil {
			return nil, nil, nil, err
		}
		if c.Bucket == "" {
			return nil, nil, nil, errors.New(`"sub.bucket" is missing: the Cloud Storage bucket to use`)
		}
		if c.Name == "" {
			return nil, nil, nil, errors.New(`"sub.name" is missing: the object name of the backup`)
		}
		if c.CredentialsPath == "" {
			return nil, nil, nil, errors.New(`"sub.credentials_path" is missing: a service account's JSON key file`)
		}
		return nil, &c, nil, nil
	default:
		var c FileConfig
		if err := strict(&c); err != nil {
			return nil, nil, nil, err
		}
		if !filepath.IsAbs(c.Dir) {
			return nil, nil, nil, fmt.Errorf(`"sub.dir": directory path must be absolute: %q`, c.Dir)
		}
		if c.Name == "" || c.Name != filepath.Base(c.Name) || c.Name == "." || c.Name == ".." || strings.ContainsAny(c.Name, `/\`) {
			return nil, nil, nil, fmt.Errorf(`"sub.name": invalid file parameter: %q (must be a simple filename without path separators)`, c.Name)
		}
		return nil, nil, &c, nil
	}
}
