package cdc

import (
	"encoding/json"
	"strings"
	"testing"
)

// readsFiles reports whether a configuration names TLS files, which Parse would read: the fuzzer must not
// open whatever path it makes up (a FIFO or a device would block). Keys match as encoding/json matches
// them, case-insensitively.
func readsFiles(b []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return false
	}
	for k, v := range top {
		if !strings.EqualFold(k, "tls") {
			continue
		}
		var fields map[string]json.RawMessage
		if json.Unmarshal(v, &fields) != nil {
			continue
		}
		for f, fv := range fields {
			for _, name := range []string{"ca_cert_file", "cert_file", "key_file"} {
				if strings.EqualFold(f, name) && string(fv) != `""` && string(fv) != "null" {
					return true
				}
			}
		}
	}
	return false
}

// FuzzParse: Parse never panics, and what it accepts is a configuration the service can run with.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"endpoint":"stdout"}`,
		`{"endpoint":"pull","pull_retention":"10m"}`,
		`{"endpoint":"PULL","pull_retention":0}`,
		`{"endpoint":"https://u:p@example.com/hook","service_id":"svc","row_ids_only":true,"table_filter":"^keep",
		  "tls":{"insecure_skip_verify":true,"server_name":"x"},"max_batch_size":25,"max_batch_delay":300000000,
		  "high_watermark_interval":"2s","transmit_timeout":7000000000,"transmit_max_retries":4,
		  "transmit_retry_policy":1,"transmit_min_backoff":"100ms","transmit_max_backoff":9000000000,
		  "pull_retention":60000000000}`,
		`{"endpoint":"HTTP://example.com","transmit_max_retries":null,"transmit_retry_policy":null,"tls":{}}`,
		`{"endpoint":"http://","max_batch_size":-1}`,
		`{"endpoint":"ftp://x"}`,
		`{"endpoint":"stdout","table_filter":"("}`,
		`{"endpoint":"stdout","table_filter":5}`,
		`{"endpoint":"stdout","max_batch_delay":"-1s"}`,
		`{"endpoint":"stdout","max_batch_delay":1e9}`,
		`{"endpoint":"stdout","max_batch_delay":"200"}`,
		`{"endpoint":"stdout","transmit_min_backoff":"1m"}`,
		`{"endpoint":"stdout","transmit_retry_policy":2}`,
		`{"endpoint":"stdout","bogus":1}`,
		`{"endpoint":"stdout","tls":{"bogus":1}}`,
		`{"endpoint":"stdout"} ]`,
		`{"endpoint":"stdout"} {}`,
		`[]`, `null`, ``, `"stdout"`, `{"endpoint":"st\u0064out"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if readsFiles(b) {
			return
		}
		c, err := Parse(b, "fuzz.json")
		if err != nil {
			if c != nil {
				t.Fatalf("a config with an error: %+v, %v", c, err)
			}
			if !strings.HasPrefix(err.Error(), "CDC config fuzz.json: ") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if c == nil {
			t.Fatal("no config and no error")
		}
		if c.Endpoint != "stdout" && c.Endpoint != "pull" && !c.IsWebhook() {
			t.Fatalf("endpoint %q is neither stdout, pull nor a webhook", c.Endpoint)
		}
		if c.Sends() != (c.Endpoint != "pull") {
			t.Fatalf("endpoint %q: sends %v", c.Endpoint, c.Sends())
		}
		if c.MaxBatchSize < 1 || c.MaxBatchDelay <= 0 || c.HighWatermarkInterval <= 0 || c.TransmitTimeout <= 0 ||
			c.TransmitMinBackoff <= 0 || c.TransmitMaxBackoff < c.TransmitMinBackoff || c.PullRetention < 0 ||
			c.TransmitMaxRetries < 0 || (c.TransmitRetryPolicy != Linear && c.TransmitRetryPolicy != Exponential) {
			t.Fatalf("accepted a configuration the service cannot run with: %+v", c)
		}
		if c.TLS != nil && !strings.HasPrefix(c.Endpoint, "https://") {
			t.Fatalf("tls for endpoint %q", c.Endpoint)
		}
		_ = c.Redacted()
	})
}
