package disco

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// kvStore is a key-value service that can store a key only if it is absent.
type kvStore interface {
	get(ctx context.Context, key string) (value []byte, found bool, err error)
	putIfAbsent(ctx context.Context, key string, value []byte) (bool, error)
	put(ctx context.Context, key string, value []byte) error
	describe() string
}

// Self is how a node describes itself under the leader key: rqlite's JSON, so that tools reading the key
// work with either.
type Self struct {
	ID      string `json:"id,omitempty"`
	APIAddr string `json:"api_addr,omitempty"` // http(s)://host:port
	Addr    string `json:"addr,omitempty"`     // the Raft address
}

// How often a node without a cluster reads the key (jittered up to twice this), and how often the leader
// writes it again, so that a write lost to a failure is repaired.
const (
	RegisterInterval = 3 * time.Second
	ReportInterval   = 10 * time.Second
)

// KV is discovery through a leader key in etcd or Consul.
type KV struct {
	mode  string
	key   string
	store kvStore
	self  Self
	log   *slog.Logger

	mu          sync.Mutex
	lastContact time.Time
	lastErr     string
	lastLeader  string
}

// Leader returns the Raft address of the leader the key names, "" if the key is absent.
func (k *KV) Leader(ctx context.Context) (string, error) {
	v, found, err := k.store.get(ctx, k.key)
	if err != nil {
		k.failed(err)
		return "", fmt.Errorf("failed to get leader from %s: %w", k.store.describe(), err)
	}
	if !found {
		return "", nil
	}
	var s Self
	if err := json.Unmarshal(v, &s); err != nil || s.Addr == "" {
		return "", fmt.Errorf("the key %s in %s does not name a leader (%q): delete it, or use another -disco-key", k.key, k.store.describe(), v)
	}
	k.mu.Lock()
	k.lastLeader = s.Addr
	k.mu.Unlock()
	return s.Addr, nil
}

// Claim stores this node under the key if the key is absent, and reports whether it did.
func (k *KV) Claim(ctx context.Context) (bool, error) {
	v, _ := json.Marshal(k.self)
	ok, err := k.store.putIfAbsent(ctx, k.key, v)
	if err != nil {
		k.failed(err)
		return false, fmt.Errorf("failed to initialize as Leader in %s: %w", k.store.describe(), err)
	}
	if ok {
		k.contacted()
	}
	return ok, nil
}

// Report keeps the key naming this node while it leads: at once when it becomes leader, then every
// ReportInterval. It returns when ctx ends.
func (k *KV) Report(ctx context.Context, isLeader func() bool) {
	var last time.Time
	wasLeader := false
	for {
		leader := isLeader()
		if leader && (!wasLeader || time.Since(last) >= ReportInterval) {
			v, _ := json.Marshal(k.self)
			if err := k.store.put(ctx, k.key, v); err != nil {
				k.failed(err)
				k.log.Warn("failed to update discovery service with Leader details", "service", k.store.describe(), "err", err)
			} else {
				if !wasLeader {
					k.log.Info("updated Leader API address due to leadership change", "api_addr", k.self.APIAddr, "key", k.key)
				}
				last = time.Now()
				k.contacted()
				wasLeader = true
			}
		} else if !leader {
			wasLeader = false
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (k *KV) failed(err error) {
	k.mu.Lock()
	k.lastErr = err.Error()
	k.mu.Unlock()
}

func (k *KV) contacted() {
	k.mu.Lock()
	k.lastContact, k.lastErr = time.Now(), ""
	k.mu.Unlock()
}

// Key is the leader key.
func (k *KV) Key() string { return k.key }

// Status is /status's disco section: rqlite's keys, and the key, the service and the last error.
func (k *KV) Status() map[string]any {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]any{"mode": k.mode, "register_interval": int64(RegisterInterval), "report_interval": int64(ReportInterval),
		"last_contact": k.lastContact.UTC().Format(time.RFC3339Nano), "key": k.key, "service": k.store.describe()}
	if k.lastErr != "" {
		out["last_error"] = k.lastErr
	}
	if k.lastLeader != "" {
		out["last_leader"] = k.lastLeader
	}
	return out
}
