package disco

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ConsulConfig is -disco-config for consul-kv: rqlite's fields. Unset ones fall back to Consul's usual
// environment variables (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_AUTH,
// CONSUL_HTTP_SSL, CONSUL_HTTP_SSL_VERIFY, CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY), then to
// localhost:8500 over http.
type ConsulConfig struct {
	Address    string `json:"address"`
	Scheme     string `json:"scheme"`
	Datacenter string `json:"datacenter"`
	BasicAuth  *struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"basic_auth"`
	Token     string `json:"token"`
	TokenFile string `json:"token_file"`
	Namespace string `json:"namespace"`
	Partition string `json:"partition"`
	TLSConfig struct {
		Address            string `json:"address"` // the server name to verify
		CAFile             string `json:"ca_file"`
		CAPath             string `json:"ca_path"`
		CAPem              []byte `json:"ca_pem"`
		CertFile           string `json:"cert_file"`
		CertPEM            []byte `json:"cert_pem"`
		KeyFile            string `json:"key_file"`
		KeyPEM             []byte `json:"key_pem"`
		InsecureSkipVerify bool   `json:"insecure_skip_verify"`
	} `json:"tls_config"`
}

// NewConsul makes consul-kv discovery: the leader key is <discoKey>/leader.
func NewConsul(raw []byte, discoKey string, self Self, log *slog.Logger) (*KV, error) {
	var cfg ConsulConfig
	if err := decode(ModeConsul, raw, &cfg); err != nil {
		return nil, fmt.Errorf("create Consul config: %w", err)
	}
	if strings.HasPrefix(cfg.Address, "http") {
		return nil, errors.New("create Consul config: address should not contain HTTP or HTTPS")
	}
	c, err := newConsulKV(cfg)
	if err != nil {
		return nil, fmt.Errorf("create Consul client: %w", err)
	}
	return &KV{mode: ModeConsul, key: discoKey + "/leader", store: c, self: self, log: log}, nil
}

type consulKV struct {
	base   string // scheme://address
	client *http.Client
	token  string
	query  url.Values
	user   *url.Userinfo
}

func newConsulKV(cfg ConsulConfig) (*consulKV, error) {
	scheme, addr := "http", "localhost:8500"
	if env := os.Getenv("CONSUL_HTTP_ADDR"); env != "" {
		addr = env
		if u, ok := strings.CutPrefix(env, "https://"); ok {
			scheme, addr = "https", u
		} else if u, ok := strings.CutPrefix(env, "http://"); ok {
			addr = u
		}
	}
	if os.Getenv("CONSUL_HTTP_SSL") == "true" || os.Getenv("CONSUL_HTTP_SSL") == "1" {
		scheme = "https"
	}
	if cfg.Address != "" {
		addr = cfg.Address
	}
	if cfg.Scheme != "" {
		scheme = cfg.Scheme
	}
	c := &consulKV{base: scheme + "://" + addr, query: url.Values{}}
	c.token = os.Getenv("CONSUL_HTTP_TOKEN")
	tokenFile := os.Getenv("CONSUL_HTTP_TOKEN_FILE")
	if cfg.TokenFile != "" {
		tokenFile = cfg.TokenFile
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token_file: %w", err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	if cfg.Token != "" {
		c.token = cfg.Token
	}
	if auth := os.Getenv("CONSUL_HTTP_AUTH"); auth != "" {
		user, pass, _ := strings.Cut(auth, ":")
		c.user = url.UserPassword(user, pass)
	}
	if cfg.BasicAuth != nil {
		c.user = url.UserPassword(cfg.BasicAuth.Username, cfg.BasicAuth.Password)
	}
	for k, v := range map[string]string{"dc": cfg.Datacenter, "ns": cfg.Namespace, "partition": cfg.Partition} {
		if v != "" {
			c.query.Set(k, v)
		}
	}
	tlsCfg, err := consulTLS(cfg)
	if err != nil {
		return nil, err
	}
	c.client = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	return c, nil
}

func consulTLS(cfg ConsulConfig) (*tls.Config, error) {
	t := cfg.TLSConfig
	caFile, certFile, keyFile := cmp.Or(t.CAFile, os.Getenv("CONSUL_CACERT")), cmp.Or(t.CertFile, os.Getenv("CONSUL_CLIENT_CERT")), cmp.Or(t.KeyFile, os.Getenv("CONSUL_CLIENT_KEY"))
	out := &tls.Config{ServerName: t.Address, InsecureSkipVerify: t.InsecureSkipVerify || os.Getenv("CONSUL_HTTP_SSL_VERIFY") == "false"}
	var cas [][]byte
	if len(t.CAPem) > 0 {
		cas = append(cas, t.CAPem)
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config.ca_file: %w", err)
		}
		cas = append(cas, b)
	}
	if t.CAPath != "" {
		files, _ := filepath.Glob(filepath.Join(t.CAPath, "*"))
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil {
				cas = append(cas, b)
			}
		}
	}
	if len(cas) > 0 {
		out.RootCAs = x509.NewCertPool()
		for _, pem := range cas {
			out.RootCAs.AppendCertsFromPEM(pem)
		}
	}
	certPEM, keyPEM := t.CertPEM, t.KeyPEM
	if certFile != "" {
		b, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config.cert_file: %w", err)
		}
		certPEM = b
	}
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config.key_file: %w", err)
		}
		keyPEM = b
	}
	if len(certPEM) > 0 || len(keyPEM) > 0 {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls_config client certificate: %w", err)
		}
		out.Certificates = []tls.Certificate{cert}
	}
	return out, nil
}

func (c *consulKV) describe() string { return "Consul " + c.base }

func (c *consulKV) do(ctx context.Context, method, key string, q url.Values, body []byte) ([]byte, int, error) {
	u, _ := url.Parse(c.base + "/v1/kv/" + key)
	vals := url.Values{}
	for k, v := range c.query {
		vals[k] = v
	}
	for k, v := range q {
		vals[k] = v
	}
	u.RawQuery = vals.Encode()
	u.User = c.user
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, 0, err
	}
	if c.token != "" {
		req.Header.Set("X-Consul-Token", c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, u.Redacted(), resp.Status, bytes.TrimSpace(b))
	}
	return b, resp.StatusCode, nil
}

func (c *consulKV) get(ctx context.Context, key string) ([]byte, bool, error) {
	b, code, err := c.do(ctx, http.MethodGet, key, nil, nil)
	if err != nil || code == http.StatusNotFound {
		return nil, false, err
	}
	var entries []struct {
		Value []byte `json:"Value"`
	}
	if err := json.Unmarshal(b, &entries); err != nil || len(entries) == 0 {
		return nil, false, fmt.Errorf("Consul answered %q for %s", b, key)
	}
	return entries[0].Value, true, nil
}

// putIfAbsent is a check-and-set with index 0: Consul stores the value only if the key does not exist.
func (c *consulKV) putIfAbsent(ctx context.Context, key string, value []byte) (bool, error) {
	b, _, err := c.do(ctx, http.MethodPut, key, url.Values{"cas": {"0"}}, value)
	return strings.TrimSpace(string(b)) == "true", err
}

func (c *consulKV) put(ctx context.Context, key string, value []byte) error {
	b, _, err := c.do(ctx, http.MethodPut, key, nil, value)
	if err == nil && strings.TrimSpace(string(b)) != "true" {
		err = fmt.Errorf("Consul did not store %s: %s", key, b)
	}
	return err
}
