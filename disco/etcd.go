package disco

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// EtcdConfig is -disco-config for etcd-kv: the etcd client's own keys, hyphenated as rqlite reads them.
// Keys that only tune the etcd Go client are accepted and have no effect here.
type EtcdConfig struct {
	Endpoints   []string `json:"endpoints"`
	DialTimeout duration `json:"dial-timeout"`
	Username    string   `json:"username"`
	Password    string   `json:"password"`
	// raftlite's own, for etcd served over TLS (https:// endpoints).
	CAFile             string `json:"ca-file"`
	CertFile           string `json:"cert-file"`
	KeyFile            string `json:"key-file"`
	InsecureSkipVerify bool   `json:"insecure-skip-verify"`

	AutoSyncInterval      json.RawMessage `json:"auto-sync-interval"`
	DialKeepAliveTime     json.RawMessage `json:"dial-keep-alive-time"`
	DialKeepAliveTimeout  json.RawMessage `json:"dial-keep-alive-timeout"`
	BackoffWaitBetween    json.RawMessage `json:"backoff-wait-between"`
	BackoffJitterFraction json.RawMessage `json:"backoff-jitter-fraction"`
	MaxUnaryRetries       json.RawMessage `json:"max-unary-retries"`
	RejectOldCluster      json.RawMessage `json:"reject-old-cluster"`
	PermitWithoutStream   json.RawMessage `json:"permit-without-stream"`
}

// NewEtcd makes etcd-kv discovery: the leader key is /<discoKey>/leader.
func NewEtcd(raw []byte, discoKey string, self Self, log *slog.Logger) (*KV, error) {
	cfg := EtcdConfig{Endpoints: []string{"localhost:2379"}, DialTimeout: duration(5 * time.Second)}
	if err := decode(ModeEtcd, raw, &cfg); err != nil {
		return nil, fmt.Errorf("create etcd config: %w", err)
	}
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("create etcd client: \"endpoints\" is empty")
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("create etcd client: ca-file: %w", err)
		}
		tlsCfg.RootCAs = x509.NewCertPool()
		if !tlsCfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("create etcd client: ca-file %s holds no certificate", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("create etcd client: cert-file and key-file: %w", err)
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	e := &etcdKV{username: cfg.Username, password: cfg.Password, client: &http.Client{
		Timeout:   time.Duration(cfg.DialTimeout) + 10*time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsCfg, ResponseHeaderTimeout: 10 * time.Second},
	}}
	for _, ep := range cfg.Endpoints {
		if !strings.Contains(ep, "://") {
			ep = "http://" + ep
		}
		e.endpoints = append(e.endpoints, strings.TrimSuffix(ep, "/"))
	}
	return &KV{mode: ModeEtcd, key: "/" + discoKey + "/leader", store: e, self: self, log: log}, nil
}

// etcdKV speaks to etcd's JSON gateway (/v3/kv/...), which every etcd v3.4+ serves on its client port.
type etcdKV struct {
	endpoints          []string
	client             *http.Client
	username, password string

	mu    sync.Mutex
	token string
}

func (e *etcdKV) describe() string { return "etcd " + strings.Join(e.endpoints, ",") }

var b64 = base64.StdEncoding.EncodeToString

func (e *etcdKV) get(ctx context.Context, key string) ([]byte, bool, error) {
	var out struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := e.call(ctx, "/v3/kv/range", map[string]any{"key": b64([]byte(key))}, &out); err != nil {
		return nil, false, err
	}
	if len(out.Kvs) == 0 {
		return nil, false, nil
	}
	v, err := base64.StdEncoding.DecodeString(out.Kvs[0].Value)
	return v, true, err
}

func (e *etcdKV) putIfAbsent(ctx context.Context, key string, value []byte) (bool, error) {
	var out struct {
		Succeeded bool `json:"succeeded"`
	}
	txn := map[string]any{
		"compare": []any{map[string]any{"key": b64([]byte(key)), "target": "VERSION", "result": "EQUAL", "version": "0"}},
		"success": []any{map[string]any{"request_put": map[string]any{"key": b64([]byte(key)), "value": b64(value)}}},
	}
	err := e.call(ctx, "/v3/kv/txn", txn, &out)
	return out.Succeeded, err
}

func (e *etcdKV) put(ctx context.Context, key string, value []byte) error {
	return e.call(ctx, "/v3/kv/put", map[string]any{"key": b64([]byte(key)), "value": b64(value)}, nil)
}

// call posts to each endpoint in turn until one answers; with credentials, it authenticates first, and
// again when the token has expired.
func (e *etcdKV) call(ctx context.Context, path string, body, out any) error {
	var lastErr error
	for _, ep := range e.endpoints {
		err := e.callOne(ctx, ep, path, body, out, true)
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return lastErr
}

type etcdError struct {
	status int
	msg    string
}

func (e *etcdError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func (e *etcdKV) callOne(ctx context.Context, ep, path string, body, out any, retryAuth bool) error {
	token, err := e.authToken(ctx, ep)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		msg := gatewayError(rb)
		if retryAuth && e.username != "" && strings.Contains(msg, "token") {
			e.mu.Lock()
			e.token = ""
			e.mu.Unlock()
			return e.callOne(ctx, ep, path, body, out, false)
		}
		return &etcdError{resp.StatusCode, msg}
	}
	if out != nil {
		if err := json.Unmarshal(rb, out); err != nil {
			return fmt.Errorf("%s answered %q: %w", ep+path, rb, err)
		}
	}
	return nil
}

func (e *etcdKV) authToken(ctx context.Context, ep string) (string, error) {
	if e.username == "" {
		return "", nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != "" {
		return e.token, nil
	}
	b, _ := json.Marshal(map[string]string{"name": e.username, "password": e.password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+"/v3/auth/authenticate", bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(rb, &out) != nil || out.Token == "" {
		return "", fmt.Errorf("authenticate as %q: %s", e.username, gatewayError(rb))
	}
	e.token = out.Token
	return e.token, nil
}

// gatewayError is the reason in an error answer of etcd's gateway ({"error":..., "message":...}).
func gatewayError(body []byte) string {
	var ge struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	json.Unmarshal(body, &ge)
	if msg := cmp.Or(ge.Message, ge.Error); msg != "" {
		return msg
	}
	return strings.TrimSpace(string(body))
}
