package testservers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ConsulKV is a stand-in for Consul's KV HTTP API (Consul itself cannot be installed here: it is not
// packaged by Debian, and its source is not under an open-source licence): GET, PUT with ?cas=, DELETE
// on /v1/kv/<key>, with Consul's JSON entries, indexes and X-Consul-Index header, and, when Token is set,
// Consul's 403 for requests without it. It is not Consul: no sessions, blocking queries or ACL policies.
type ConsulKV struct {
	URL   string
	Addr  string // host:port, as the address field of a -disco-config wants it
	Token string

	mu      sync.Mutex
	index   uint64
	entries map[string]*consulEntry
	down    bool
}

type consulEntry struct {
	Key         string
	Value       []byte
	CreateIndex uint64
	ModifyIndex uint64
	LockIndex   uint64
	Flags       uint64
}

// StartConsulKV starts the stand-in; with token set, requests must carry it.
func StartConsulKV(t testing.TB, token string) *ConsulKV {
	t.Helper()
	c := &ConsulKV{Token: token, entries: map[string]*consulEntry{}, index: 1}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	c.Addr = strings.TrimPrefix(srv.URL, "http://")
	return c
}

// SetDown makes the stand-in answer 500 to everything, as an agent that lost its servers does.
func (c *ConsulKV) SetDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

// Get returns a key's value, and whether it exists.
func (c *ConsulKV) Get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	return e.Value, true
}

func (c *ConsulKV) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := strings.CutPrefix(r.URL.Path, "/v1/kv/")
	if !ok || key == "" {
		http.Error(w, "Invalid URL path", http.StatusNotFound)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
		return
	}
	if c.Token != "" && r.Header.Get("X-Consul-Token") != c.Token {
		http.Error(w, "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:read' on \""+key+"\"", http.StatusForbidden)
		return
	}
	w.Header().Set("X-Consul-Index", strconv.FormatUint(c.index, 10))
	switch r.Method {
	case http.MethodGet:
		e, ok := c.entries[key]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode([]*consulEntry{e})
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		e, exists := c.entries[key]
		if cas := r.URL.Query().Get("cas"); cas != "" {
			want, err := strconv.ParseUint(cas, 10, 64)
			if err != nil {
				http.Error(w, "Invalid CAS index", http.StatusBadRequest)
				return
			}
			if (want == 0 && exists) || (want != 0 && (!exists || e.ModifyIndex != want)) {
				w.Write([]byte("false"))
				return
			}
		}
		c.index++
		if !exists {
			e = &consulEntry{Key: key, CreateIndex: c.index}
			c.entries[key] = e
		}
		e.Value, e.ModifyIndex = body, c.index
		w.Write([]byte("true"))
	case http.MethodDelete:
		delete(c.entries, key)
		c.index++
		w.Write([]byte("true"))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
