package shell

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// While the cluster elects a leader, requests are tried again; other refusals come back at once.
func TestRetriesWhileNoLeader(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/boot":
			calls.Add(1)
			http.Error(w, "not leader", http.StatusServiceUnavailable)
		case calls.Add(1) <= 2:
			http.Error(w, "leader not found", http.StatusServiceUnavailable)
		default:
			io.WriteString(w, `{"results":[{"rows_affected":1}]}`)
		}
	}))
	defer srv.Close()
	c, err := NewClient(ClientConfig{Hosts: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.do(context.Background(), jsonRequest(http.MethodPost, "/db/execute", []string{"INSERT INTO t VALUES (1)"}))
	if err != nil || resp.StatusCode != http.StatusOK || calls.Load() != 3 {
		t.Fatalf("after two elections' worth of 503s: %v, %v, %d calls", resp, err, calls.Load())
	}
	resp.Body.Close()
	calls.Store(0)
	resp, err = c.do(context.Background(), request{method: http.MethodPost, path: "/boot"})
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Fatalf("a 503 that is not about the leader: %v, %v, %d calls", resp, err, calls.Load())
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "not leader\n" {
		t.Fatalf("the refusal's body was lost: %q", b)
	}
}
