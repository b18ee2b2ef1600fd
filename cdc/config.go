package cdc

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/raftlite/raftlite/tlsconfig"
)

// Config is a node's CDC configuration: rqlite's -cdc-config, field for field, plus raftlite's
// pull_retention.
type Config struct {
	// Endpoint is where batches go: an http(s) URL, "stdout", or "pull" (no webhook: consumers read the
	// pull feed only).
	Endpoint   string
	ServiceID  string
	RowIDsOnly bool
	// TableFilter, if set, keeps only the changes of tables whose name it matches (unanchored).
	TableFilter *regexp.Regexp
	// TLS is the client configuration for an https endpoint (nil: Go's defaults).
	TLS                   *tls.Config
	MaxBatchSize          int           // entries (not rows) per POST
	MaxBatchDelay         time.Duration // longest wait for a batch to fill
	HighWatermarkInterval time.Duration // how often the leader tells the voters what was delivered
	TransmitTimeout       time.Duration // one POST, whole
	// TransmitMaxRetries is how many POSTs a batch gets before it is given up (0: forever).
	TransmitMaxRetries  int
	TransmitRetryPolicy RetryPolicy
	TransmitMinBackoff  time.Duration
	TransmitMaxBackoff  time.Duration
	// PullRetention keeps delivered events this long for the pull feed (raftlite's own field).
	PullRetention time.Duration
}

// RetryPolicy is how the wait between two POSTs of a batch grows.
type RetryPolicy int

const (
	Linear      RetryPolicy = 0 // always TransmitMinBackoff
	Exponential RetryPolicy = 1 // doubled before every wait, up to TransmitMaxBackoff
)

// Defaults, as rqlite has them.
const (
	DefaultMaxBatchSize          = 10
	DefaultMaxBatchDelay         = 200 * time.Millisecond
	DefaultHighWatermarkInterval = time.Second
	DefaultTransmitTimeout       = 5 * time.Second
	DefaultTransmitMinBackoff    = time.Second
	DefaultTransmitMaxBackoff    = 30 * time.Second
	// DefaultPullRetention applies when the endpoint is "pull": nothing else would ever prune the queue.
	DefaultPullRetention = time.Hour
)

// IsWebhook reports whether batches are POSTed to an HTTP endpoint.
func (c *Config) IsWebhook() bool {
	return strings.HasPrefix(c.Endpoint, "http://") || strings.HasPrefix(c.Endpoint, "https://")
}

// Sends reports whether the leader delivers batches anywhere (a webhook or stdout).
func (c *Config) Sends() bool { return c.Endpoint != "pull" }

// ParseFlag reads -cdc-config: "stdout", "pull" (raftlite's own: the pull feed only), an http(s) URL
// (default settings), or the path of a JSON file.
func ParseFlag(value string) (*Config, error) {
	switch {
	case value == "stdout", value == "pull":
		return fromFile(fileConfig{Endpoint: value}, "-cdc-config")
	case strings.HasPrefix(value, "http://") || strings.HasPrefix(value, "https://"):
		return fromFile(fileConfig{Endpoint: value}, "-cdc-config")
	}
	b, err := os.ReadFile(value)
	if err != nil {
		return nil, fmt.Errorf("-cdc-config: %w", err)
	}
	return Parse(b, value)
}

// fileConfig is the JSON file. Durations are nanoseconds, as rqlite reads them; Go duration strings
// ("200ms") are accepted too. They stay raw until fromFile reads them, so that an error names the field.
type fileConfig struct {
	Endpoint              string          `json:"endpoint"`
	ServiceID             string          `json:"service_id"`
	RowIDsOnly            bool            `json:"row_ids_only"`
	TableFilter           json.RawMessage `json:"table_filter"`
	TLS                   *tlsFields      `json:"tls"`
	MaxBatchSize          int             `json:"max_batch_size"`
	MaxBatchDelay         json.RawMessage `json:"max_batch_delay"`
	HighWatermarkInterval json.RawMessage `json:"high_watermark_interval"`
	TransmitTimeout       json.RawMessage `json:"transmit_timeout"`
	TransmitMaxRetries    *int            `json:"transmit_max_retries"`
	TransmitRetryPolicy   *int            `json:"transmit_retry_policy"`
	TransmitMinBackoff    json.RawMessage `json:"transmit_min_backoff"`
	TransmitMaxBackoff    json.RawMessage `json:"transmit_max_backoff"`
	PullRetention         json.RawMessage `json:"pull_retention"`
}

type tlsFields struct {
	CACertFile         string `json:"ca_cert_file"`
	CertFile           string `json:"cert_file"`
	KeyFile            string `json:"key_file"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify"`
	ServerName         string `json:"server_name"`
}

// parseDuration reads a JSON number of nanoseconds or a Go duration string; set tells a given 0 from
// none (absent or null).
func parseDuration(b json.RawMessage) (d time.Duration, set bool, err error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return 0, false, nil
	}
	// A quoted number ("200") would unmarshal into a json.Number too: only a bare one is nanoseconds.
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil && b[0] != '"' {
		i, err := n.Int64()
		if err != nil {
			return 0, false, fmt.Errorf("%s is not a whole number of nanoseconds", n)
		}
		return time.Duration(i), true, nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, false, fmt.Errorf("%s is neither nanoseconds nor a duration such as \"200ms\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, false, fmt.Errorf("%q is not a duration such as \"200ms\"", s)
	}
	return v, true, nil
}

// Parse reads a JSON configuration file's contents; name is the file's, for messages. Every error names
// the field it is about.
func Parse(b []byte, name string) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f fileConfig
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("CDC config %s: %w", name, explainJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("CDC config %s: more than one JSON object, or data after it", name)
	}
	return fromFile(f, "CDC config "+name)
}

// explainJSONError names the field a decoding error is about, in words.
func explainJSONError(err error) error {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("a JSON %s is not a configuration (want an object)", te.Value)
	case errors.As(err, &te):
		return fmt.Errorf("field %q: a JSON %s is not a valid value (want %s)", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return err
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64":
		return "an integer"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	case "struct":
		return "an object"
	}
	return goKind
}

func fromFile(f fileConfig, where string) (*Config, error) {
	fail := func(field, format string, args ...any) (*Config, error) {
		return nil, fmt.Errorf("%s: field %q: %s", where, field, fmt.Sprintf(format, args...))
	}
	c := &Config{Endpoint: f.Endpoint, ServiceID: f.ServiceID, RowIDsOnly: f.RowIDsOnly}
	switch lower := strings.ToLower(f.Endpoint); {
	case lower == "stdout" || lower == "pull":
		c.Endpoint = lower
	case f.Endpoint == "":
		return fail("endpoint", "missing: give an http(s) URL, \"stdout\" or \"pull\"")
	default:
		u, err := url.Parse(f.Endpoint)
		if err != nil {
			return fail("endpoint", "%q is not a URL: %v", f.Endpoint, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fail("endpoint", "unsupported scheme %q: give an http(s) URL, \"stdout\" or \"pull\"", u.Scheme)
		}
		if u.Host == "" {
			return fail("endpoint", "%q has no host", f.Endpoint)
		}
		// url.Parse takes "HTTP://": write the scheme as IsWebhook (and the tls check) expect it.
		c.Endpoint = u.Scheme + f.Endpoint[len(u.Scheme):]
	}
	if len(f.TableFilter) > 0 && string(f.TableFilter) != "null" {
		var pattern string
		if err := json.Unmarshal(f.TableFilter, &pattern); err != nil {
			return fail("table_filter", "must be a JSON string (a regular expression) or null")
		}
		if pattern != "" {
			re, err := regexp.Compile(pattern)
			if err != nil {
				return fail("table_filter", "invalid regular expression %q: %v", pattern, err)
			}
			c.TableFilter = re
		}
	}
	if f.TLS != nil && *f.TLS != (tlsFields{}) {
		if !strings.HasPrefix(c.Endpoint, "https://") {
			return fail("tls", "set, but the endpoint is not an https URL")
		}
		cfg, err := tlsconfig.Client(tlsconfig.Options{CAFile: f.TLS.CACertFile, CertFile: f.TLS.CertFile, KeyFile: f.TLS.KeyFile,
			NoVerify: f.TLS.InsecureSkipVerify, ServerName: f.TLS.ServerName})
		if err != nil {
			return fail("tls", "%v", err)
		}
		c.TLS = cfg
	}
	c.MaxBatchSize = f.MaxBatchSize
	if c.MaxBatchSize <= 0 {
		c.MaxBatchSize = DefaultMaxBatchSize
	}
	durations := []struct {
		field string
		in    json.RawMessage
		out   *time.Duration
		def   time.Duration
	}{
		{"max_batch_delay", f.MaxBatchDelay, &c.MaxBatchDelay, DefaultMaxBatchDelay},
		{"high_watermark_interval", f.HighWatermarkInterval, &c.HighWatermarkInterval, DefaultHighWatermarkInterval},
		{"transmit_timeout", f.TransmitTimeout, &c.TransmitTimeout, DefaultTransmitTimeout},
		{"transmit_min_backoff", f.TransmitMinBackoff, &c.TransmitMinBackoff, DefaultTransmitMinBackoff},
		{"transmit_max_backoff", f.TransmitMaxBackoff, &c.TransmitMaxBackoff, DefaultTransmitMaxBackoff},
		{"pull_retention", f.PullRetention, &c.PullRetention, 0},
	}
	for _, d := range durations {
		v, _, err := parseDuration(d.in)
		if err != nil {
			return fail(d.field, "%v", err)
		}
		if v < 0 {
			return fail(d.field, "%s is negative", v)
		}
		*d.out = v
		if v == 0 {
			*d.out = d.def
		}
	}
	if c.Endpoint == "pull" && c.PullRetention == 0 {
		// Nothing else prunes a pull-only queue; keeping nothing would leave the feed nothing to serve.
		c.PullRetention = DefaultPullRetention
	}
	if c.TransmitMaxBackoff < c.TransmitMinBackoff {
		return fail("transmit_max_backoff", "%s is less than transmit_min_backoff (%s)", c.TransmitMaxBackoff, c.TransmitMinBackoff)
	}
	if f.TransmitMaxRetries != nil && *f.TransmitMaxRetries > 0 {
		c.TransmitMaxRetries = *f.TransmitMaxRetries
	}
	if f.TransmitRetryPolicy != nil {
		switch p := RetryPolicy(*f.TransmitRetryPolicy); p {
		case Linear, Exponential:
			c.TransmitRetryPolicy = p
		default:
			return fail("transmit_retry_policy", "%d is not a policy: 0 is linear, 1 exponential", *f.TransmitRetryPolicy)
		}
	}
	return c, nil
}

// Redacted is the endpoint as /status shows it: a password in the URL becomes xxxxx.
func (c *Config) Redacted() string {
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.User == nil {
		return c.Endpoint
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
