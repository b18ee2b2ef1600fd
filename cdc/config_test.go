package cdc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parseOK parses a configuration that must be valid.
func parseOK(t *testing.T, js string) *Config {
	t.Helper()
	c, err := Parse([]byte(js), "cdc.json")
	if err != nil {
		t.Fatalf("Parse(%s): %v", js, err)
	}
	return c
}

// parseFails parses a configuration that must be refused, with a message that names field (quoted, as
// the messages do) and holds every one of wants.
func parseFails(t *testing.T, js, field string, wants ...string) {
	t.Helper()
	c, err := Parse([]byte(js), "cdc.json")
	if err == nil {
		t.Fatalf("Parse(%s) = %+v, want an error about %s", js, c, field)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"`+field+`"`) {
		t.Errorf("Parse(%s): error %q does not name the field %q", js, msg, field)
	}
	if !strings.Contains(msg, "cdc.json") {
		t.Errorf("Parse(%s): error %q does not name the file", js, msg)
	}
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("Parse(%s): error %q does not say %q", js, msg, w)
		}
	}
}

// checkDefaults checks every setting that has a default.
func checkDefaults(t *testing.T, c *Config) {
	t.Helper()
	if c.MaxBatchSize != DefaultMaxBatchSize || c.MaxBatchDelay != DefaultMaxBatchDelay ||
		c.HighWatermarkInterval != DefaultHighWatermarkInterval || c.TransmitTimeout != DefaultTransmitTimeout ||
		c.TransmitMinBackoff != DefaultTransmitMinBackoff || c.TransmitMaxBackoff != DefaultTransmitMaxBackoff ||
		c.TransmitMaxRetries != 0 || c.TransmitRetryPolicy != Linear || c.TableFilter != nil || c.TLS != nil ||
		c.RowIDsOnly || c.ServiceID != "" {
		t.Errorf("not the defaults: %+v", c)
	}
}

func TestDefaultsMatchRqlite(t *testing.T) {
	if DefaultMaxBatchSize != 10 || DefaultMaxBatchDelay != 200*time.Millisecond ||
		DefaultHighWatermarkInterval != time.Second || DefaultTransmitTimeout != 5*time.Second ||
		DefaultTransmitMinBackoff != time.Second || DefaultTransmitMaxBackoff != 30*time.Second ||
		DefaultPullRetention != time.Hour {
		t.Fatal("a default changed")
	}
}

func TestParseFlagStdout(t *testing.T) {
	c, err := ParseFlag("stdout")
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "stdout" || c.IsWebhook() || !c.Sends() || c.PullRetention != 0 {
		t.Errorf("stdout: %+v (webhook %v, sends %v)", c, c.IsWebhook(), c.Sends())
	}
	checkDefaults(t, c)
}

func TestParseFlagURL(t *testing.T) {
	for _, u := range []string{"http://example.com/hook", "https://user:pw@example.com:8443/cdc?x=1"} {
		c, err := ParseFlag(u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if c.Endpoint != u || !c.IsWebhook() || !c.Sends() {
			t.Errorf("%s: %+v", u, c)
		}
		checkDefaults(t, c)
	}
	// A URL with no host is refused at once, naming the flag and the field.
	_, err := ParseFlag("http://")
	if err == nil || !strings.Contains(err.Error(), "-cdc-config") || !strings.Contains(err.Error(), `"endpoint"`) {
		t.Errorf("http:// with no host: %v", err)
	}
}

func TestParseFlagFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdc.json")
	if err := os.WriteFile(path, []byte(`{"endpoint":"https://example.com/x","max_batch_size":3}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ParseFlag(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "https://example.com/x" || c.MaxBatchSize != 3 {
		t.Errorf("%+v", c)
	}
	// Errors in the file name the file.
	if err := os.WriteFile(path, []byte(`{"endpoint":"ftp://example.com"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFlag(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"endpoint"`) {
		t.Errorf("bad file: %v", err)
	}
}

func TestParseFlagMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	// "STDOUT" is not "stdout": the flag compares exactly, so it is a (missing) file.
	for _, v := range []string{missing, "STDOUT", "Http://example.com"} {
		_, err := ParseFlag(v)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "-cdc-config") {
			t.Errorf("%s: %v, want a missing-file error naming -cdc-config", v, err)
		}
	}
}

func TestParseEveryField(t *testing.T) {
	c := parseOK(t, `{
		"endpoint": "https://example.com/hook",
		"service_id": "svc-1",
		"row_ids_only": true,
		"table_filter": "^keep",
		"tls": {"insecure_skip_verify": true, "server_name": "cdc.example.com"},
		"max_batch_size": 25,
		"max_batch_delay": 300000000,
		"high_watermark_interval": 2000000000,
		"transmit_timeout": 7000000000,
		"transmit_max_retries": 4,
		"transmit_retry_policy": 1,
		"transmit_min_backoff": 100000000,
		"transmit_max_backoff": 9000000000,
		"pull_retention": 60000000000
	}`)
	if c.Endpoint != "https://example.com/hook" || c.ServiceID != "svc-1" || !c.RowIDsOnly ||
		c.MaxBatchSize != 25 || c.MaxBatchDelay != 300*time.Millisecond || c.HighWatermarkInterval != 2*time.Second ||
		c.TransmitTimeout != 7*time.Second || c.TransmitMaxRetries != 4 || c.TransmitRetryPolicy != Exponential ||
		c.TransmitMinBackoff != 100*time.Millisecond || c.TransmitMaxBackoff != 9*time.Second ||
		c.PullRetention != time.Minute {
		t.Errorf("%+v", c)
	}
	if c.TableFilter == nil || c.TableFilter.String() != "^keep" {
		t.Errorf("table_filter: %v", c.TableFilter)
	}
	if c.TLS == nil || !c.TLS.InsecureSkipVerify || c.TLS.ServerName != "cdc.example.com" {
		t.Errorf("tls: %+v", c.TLS)
	}
	if !c.IsWebhook() || !c.Sends() {
		t.Error("an https endpoint is a webhook that sends")
	}
}

func TestParseDurationStrings(t *testing.T) {
	c := parseOK(t, `{"endpoint":"stdout","max_batch_delay":"200ms","high_watermark_interval":"1.5s",
		"transmit_timeout":"1m","transmit_min_backoff":"20ms","transmit_max_backoff":"2m30s","pull_retention":"2h"}`)
	if c.MaxBatchDelay != 200*time.Millisecond || c.HighWatermarkInterval != 1500*time.Millisecond ||
		c.TransmitTimeout != time.Minute || c.TransmitMinBackoff != 20*time.Millisecond ||
		c.TransmitMaxBackoff != 150*time.Second || c.PullRetention != 2*time.Hour {
		t.Errorf("%+v", c)
	}
	// Integers and strings mix.
	c = parseOK(t, `{"endpoint":"stdout","max_batch_delay":50000000,"transmit_timeout":"3s"}`)
	if c.MaxBatchDelay != 50*time.Millisecond || c.TransmitTimeout != 3*time.Second {
		t.Errorf("%+v", c)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, js := range []string{
		`{"endpoint":"stdout"}`,
		`{"endpoint":"stdout","max_batch_size":0,"max_batch_delay":0,"high_watermark_interval":0,"transmit_timeout":0,
		  "transmit_min_backoff":0,"transmit_max_backoff":0,"pull_retention":0,"transmit_retry_policy":0}`,
		`{"endpoint":"stdout","max_batch_delay":"0s","high_watermark_interval":"0","transmit_timeout":null,
		  "transmit_min_backoff":null,"transmit_max_backoff":"0ms","table_filter":null,"tls":null,
		  "transmit_max_retries":null,"transmit_retry_policy":null,"service_id":"","row_ids_only":false}`,
		`{"endpoint":"stdout","tls":{}}`,
	} {
		c := parseOK(t, js)
		checkDefaults(t, c)
		if c.PullRetention != 0 {
			t.Errorf("%s: pull_retention %s, want 0 for a sending endpoint", js, c.PullRetention)
		}
	}
}

func TestParseMaxBatchSize(t *testing.T) {
	for js, want := range map[string]int{
		`{"endpoint":"stdout","max_batch_size":0}`:    10,
		`{"endpoint":"stdout","max_batch_size":-1}`:   10,
		`{"endpoint":"stdout","max_batch_size":-100}`: 10,
		`{"endpoint":"stdout","max_batch_size":1}`:    1,
		`{"endpoint":"stdout","max_batch_size":500}`:  500,
	} {
		if got := parseOK(t, js).MaxBatchSize; got != want {
			t.Errorf("%s: max batch size %d, want %d", js, got, want)
		}
	}
	parseFails(t, `{"endpoint":"stdout","max_batch_size":"5"}`, "max_batch_size", "string")
	parseFails(t, `{"endpoint":"stdout","max_batch_size":2.5}`, "max_batch_size")
}

func TestParseTransmitMaxRetries(t *testing.T) {
	for js, want := range map[string]int{
		`{"endpoint":"stdout"}`:                             0,
		`{"endpoint":"stdout","transmit_max_retries":null}`: 0,
		`{"endpoint":"stdout","transmit_max_retries":-1}`:   0,
		`{"endpoint":"stdout","transmit_max_retries":-50}`:  0,
		`{"endpoint":"stdout","transmit_max_retries":0}`:    0,
		`{"endpoint":"stdout","transmit_max_retries":1}`:    1,
		`{"endpoint":"stdout","transmit_max_retries":2}`:    2,
		`{"endpoint":"stdout","transmit_max_retries":100}`:  100,
	} {
		if got := parseOK(t, js).TransmitMaxRetries; got != want {
			t.Errorf("%s: transmit max retries %d, want %d", js, got, want)
		}
	}
	parseFails(t, `{"endpoint":"stdout","transmit_max_retries":"3"}`, "transmit_max_retries", "string")
	parseFails(t, `{"endpoint":"stdout","transmit_max_retries":true}`, "transmit_max_retries")
}

func TestParseTransmitRetryPolicy(t *testing.T) {
	if p := parseOK(t, `{"endpoint":"stdout","transmit_retry_policy":0}`).TransmitRetryPolicy; p != Linear {
		t.Errorf("0: %v", p)
	}
	if p := parseOK(t, `{"endpoint":"stdout","transmit_retry_policy":1}`).TransmitRetryPolicy; p != Exponential {
		t.Errorf("1: %v", p)
	}
	parseFails(t, `{"endpoint":"stdout","transmit_retry_policy":2}`, "transmit_retry_policy", "2")
	parseFails(t, `{"endpoint":"stdout","transmit_retry_policy":-1}`, "transmit_retry_policy", "-1")
	// rqlite takes only the integer.
	parseFails(t, `{"endpoint":"stdout","transmit_retry_policy":"1"}`, "transmit_retry_policy")
	parseFails(t, `{"endpoint":"stdout","transmit_retry_policy":"exponential"}`, "transmit_retry_policy")
}

func TestParseTableFilter(t *testing.T) {
	c := parseOK(t, `{"endpoint":"stdout","table_filter":"^keep"}`)
	if c.TableFilter == nil || !c.TableFilter.MatchString("keepme") || c.TableFilter.MatchString("dropme") {
		t.Errorf("^keep: %v", c.TableFilter)
	}
	// Unanchored.
	c = parseOK(t, `{"endpoint":"stdout","table_filter":"ee"}`)
	if c.TableFilter == nil || !c.TableFilter.MatchString("keepme") || c.TableFilter.MatchString("other") {
		t.Errorf("ee: %v", c.TableFilter)
	}
	for _, js := range []string{`{"endpoint":"stdout","table_filter":""}`, `{"endpoint":"stdout","table_filter":null}`,
		`{"endpoint":"stdout"}`} {
		if c := parseOK(t, js); c.TableFilter != nil {
			t.Errorf("%s: filter %v, want none", js, c.TableFilter)
		}
	}
	for _, js := range []string{`5`, `true`, `["a"]`, `{"a":1}`} {
		parseFails(t, `{"endpoint":"stdout","table_filter":`+js+`}`, "table_filter", "string")
	}
	parseFails(t, `{"endpoint":"stdout","table_filter":"("}`, "table_filter", "invalid regular expression", `"("`)
	parseFails(t, `{"endpoint":"stdout","table_filter":"a**"}`, "table_filter", "invalid regular expression")
}

// writeCA writes a self-signed CA certificate (PEM) and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseTLS(t *testing.T) {
	ca := writeCA(t)
	c := parseOK(t, `{"endpoint":"https://example.com","tls":{"ca_cert_file":`+jsonQuote(ca)+`}}`)
	if c.TLS == nil || c.TLS.RootCAs == nil || c.TLS.InsecureSkipVerify {
		t.Errorf("ca_cert_file: %+v", c.TLS)
	}
	// Only with https.
	for _, ep := range []string{"http://example.com", "stdout", "pull"} {
		parseFails(t, `{"endpoint":"`+ep+`","tls":{"insecure_skip_verify":true}}`, "tls", "https")
	}
	// An empty tls object is no TLS setting at all.
	if c := parseOK(t, `{"endpoint":"http://example.com","tls":{}}`); c.TLS != nil {
		t.Errorf("empty tls: %+v", c.TLS)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	parseFails(t, `{"endpoint":"https://example.com","tls":{"ca_cert_file":`+jsonQuote(missing)+`}}`, "tls")
	// A file with no certificate in it.
	parseFails(t, `{"endpoint":"https://example.com","tls":{"ca_cert_file":`+jsonQuote(filepath.Dir(ca))+`}}`, "tls")
	parseFails(t, `{"endpoint":"https://example.com","tls":{"cert_file":`+jsonQuote(ca)+`}}`, "tls")
	parseFails(t, `{"endpoint":"https://example.com","tls":{"key_file":`+jsonQuote(ca)+`}}`, "tls")
	parseFails(t, `{"endpoint":"https://example.com","tls":"yes"}`, "tls", "object")
	parseFails(t, `{"endpoint":"https://example.com","tls":{"insecure_skip_verify":"yes"}}`, "tls.insecure_skip_verify")
	parseFails(t, `{"endpoint":"https://example.com","tls":{"bogus":1}}`, "bogus", "unknown field")
}

func jsonQuote(s string) string { return string(jsonString(s)) }

func TestParseEndpoint(t *testing.T) {
	parseFails(t, `{}`, "endpoint", "missing")
	parseFails(t, `{"endpoint":""}`, "endpoint", "missing")
	parseFails(t, `{"service_id":"x"}`, "endpoint", "missing")
	parseFails(t, `null`, "endpoint", "missing")
	parseFails(t, `{"endpoint":"ftp://example.com/x"}`, "endpoint", `unsupported scheme "ftp"`)
	parseFails(t, `{"endpoint":"example.com/hook"}`, "endpoint", `unsupported scheme ""`)
	parseFails(t, `{"endpoint":"file:///tmp/x"}`, "endpoint", `unsupported scheme "file"`)
	parseFails(t, `{"endpoint":"stderr"}`, "endpoint", "unsupported scheme")
	parseFails(t, `{"endpoint":"http://"}`, "endpoint", "no host")
	parseFails(t, `{"endpoint":"https:///path"}`, "endpoint", "no host")
	parseFails(t, `{"endpoint":"http://exa mple.com/%zz"}`, "endpoint", "not a URL")
	parseFails(t, `{"endpoint":5}`, "endpoint", "string")

	for in, want := range map[string]string{"stdout": "stdout", "STDOUT": "stdout", "StdOut": "stdout",
		"pull": "pull", "PULL": "pull", "Pull": "pull"} {
		c := parseOK(t, `{"endpoint":"`+in+`"}`)
		if c.Endpoint != want || c.IsWebhook() || c.Sends() != (want == "stdout") {
			t.Errorf("%s: endpoint %q (webhook %v, sends %v)", in, c.Endpoint, c.IsWebhook(), c.Sends())
		}
	}
	// A scheme in capitals is still a webhook (url.Parse accepts it), written as IsWebhook expects.
	c := parseOK(t, `{"endpoint":"HTTPS://Example.com/Hook","tls":{"insecure_skip_verify":true}}`)
	if c.Endpoint != "https://Example.com/Hook" || !c.IsWebhook() || c.TLS == nil {
		t.Errorf("HTTPS://: endpoint %q, webhook %v, tls %v", c.Endpoint, c.IsWebhook(), c.TLS)
	}
	if c := parseOK(t, `{"endpoint":"Http://example.com"}`); c.Endpoint != "http://example.com" || !c.IsWebhook() {
		t.Errorf("Http://: endpoint %q, webhook %v", c.Endpoint, c.IsWebhook())
	}
}

func TestParsePullRetention(t *testing.T) {
	if c := parseOK(t, `{"endpoint":"pull"}`); c.PullRetention != DefaultPullRetention {
		t.Errorf("pull, no retention: %s", c.PullRetention)
	}
	if c := parseOK(t, `{"endpoint":"PULL","pull_retention":"10m"}`); c.PullRetention != 10*time.Minute {
		t.Errorf("pull, 10m: %s", c.PullRetention)
	}
	if c := parseOK(t, `{"endpoint":"pull","pull_retention":null}`); c.PullRetention != DefaultPullRetention {
		t.Errorf("pull, null: %s", c.PullRetention)
	}
	// A sending endpoint keeps nothing past delivery unless told to.
	if c := parseOK(t, `{"endpoint":"http://example.com"}`); c.PullRetention != 0 {
		t.Errorf("webhook: %s", c.PullRetention)
	}
	if c := parseOK(t, `{"endpoint":"http://example.com","pull_retention":5000000000}`); c.PullRetention != 5*time.Second {
		t.Errorf("webhook, 5s: %s", c.PullRetention)
	}
}

var durationFields = []string{"max_batch_delay", "high_watermark_interval", "transmit_timeout",
	"transmit_min_backoff", "transmit_max_backoff", "pull_retention"}

func TestParseNegativeDurations(t *testing.T) {
	for _, f := range durationFields {
		parseFails(t, `{"endpoint":"stdout","`+f+`":-1}`, f, "negative")
		parseFails(t, `{"endpoint":"stdout","`+f+`":"-200ms"}`, f, "negative")
	}
}

func TestParseBadDurations(t *testing.T) {
	for _, f := range durationFields {
		for _, v := range []string{`"abc"`, `"200"`, `1.5`, `1e9`, `true`, `[]`, `{}`, `99999999999999999999`, `"9999999999h"`} {
			parseFails(t, `{"endpoint":"stdout","`+f+`":`+v+`}`, f)
		}
	}
}

func TestParseBackoffOrder(t *testing.T) {
	parseFails(t, `{"endpoint":"stdout","transmit_min_backoff":"2s","transmit_max_backoff":"1s"}`,
		"transmit_max_backoff", "transmit_min_backoff")
	// The default maximum (30s) is below a larger minimum.
	parseFails(t, `{"endpoint":"stdout","transmit_min_backoff":"1m"}`, "transmit_max_backoff")
	// A maximum below the default minimum (1s).
	parseFails(t, `{"endpoint":"stdout","transmit_max_backoff":"500ms"}`, "transmit_max_backoff")
	c := parseOK(t, `{"endpoint":"stdout","transmit_min_backoff":"2s","transmit_max_backoff":"2s"}`)
	if c.TransmitMinBackoff != 2*time.Second || c.TransmitMaxBackoff != 2*time.Second {
		t.Errorf("%+v", c)
	}
}

func TestParseUnknownField(t *testing.T) {
	parseFails(t, `{"endpoint":"stdout","bogus":1}`, "bogus", "unknown field")
	parseFails(t, `{"endpoint":"stdout","maxBatchSize":5}`, "maxBatchSize", "unknown field")
	parseFails(t, `{"endpoint":"stdout","version":1}`, "version", "unknown field")
}

func TestParseTypeErrors(t *testing.T) {
	parseFails(t, `{"endpoint":"stdout","service_id":5}`, "service_id", "number", "string")
	parseFails(t, `{"endpoint":"stdout","row_ids_only":"yes"}`, "row_ids_only", "true or false")
	parseFails(t, `{"endpoint":"stdout","row_ids_only":1}`, "row_ids_only")
}

func TestParseNotOneObject(t *testing.T) {
	for _, js := range []string{``, `   `, `[]`, `3`, `"stdout"`, `{"endpoint":"stdout"`, `{"endpoint":"stdout",}`,
		`{"endpoint":"stdout"} {"endpoint":"stdout"}`, `{"endpoint":"stdout"} ]`, `{"endpoint":"stdout"} }`,
		`{"endpoint":"stdout"} x`} {
		c, err := Parse([]byte(js), "cdc.json")
		if err == nil {
			t.Errorf("%q: accepted as %+v", js, c)
		} else if !strings.Contains(err.Error(), "cdc.json") {
			t.Errorf("%q: error %q does not name the file", js, err)
		}
	}
	// Whitespace around the object is fine.
	parseOK(t, "\n  {\"endpoint\":\"stdout\"}  \n\n")
}

func TestRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:secret@example.com/hook?x=1": "https://user:xxxxx@example.com/hook?x=1",
		"http://user:@example.com":                 "http://user:xxxxx@example.com",
		"http://user@example.com/x":                "http://user@example.com/x",
		"http://example.com/x":                     "http://example.com/x",
		"stdout":                                   "stdout",
		"pull":                                     "pull",
	} {
		c := &Config{Endpoint: in}
		if got := c.Redacted(); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
	// Through Parse too; the configuration itself keeps the password.
	c := parseOK(t, `{"endpoint":"https://u:p%40ss@example.com/cdc"}`)
	if got := c.Redacted(); got != "https://u:xxxxx@example.com/cdc" || strings.Contains(got, "ss") {
		t.Errorf("Redacted = %q", got)
	}
	if !strings.Contains(c.Endpoint, "p%40ss") {
		t.Errorf("endpoint %q lost its password", c.Endpoint)
	}
}
