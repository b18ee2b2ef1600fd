package shell

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/raftlite/raftlite/tlsconfig"
)

// ClientConfig says how to reach the cluster.
type ClientConfig struct {
	// Hosts are base URLs ("http://127.0.0.1:4001"); the first is tried first, the rest on failover.
	Hosts    []string
	User     string // "user:password" for HTTP Basic auth, or empty
	Timeout  time.Duration
	CACert   string // PEM file of the CA that signs the nodes' certificates
	Cert     string // client certificate (PEM) for mutual TLS
	Key      string // its private key
	Insecure bool   // skip certificate verification
}

// Client sends requests to one node of the cluster at a time and fails over to the others.
type Client struct {
	http    *http.Client
	stream  *http.Client // no overall timeout: backups and loads take as long as they take
	user    string
	mu      sync.Mutex
	hosts   []string
	current int
}

// NewClient builds a client; it does not contact the cluster.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("no host to connect to")
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	c := &Client{
		http:   &http.Client{Transport: tr, Timeout: cfg.Timeout},
		stream: &http.Client{Transport: tr},
		user:   cfg.User,
	}
	for _, h := range cfg.Hosts {
		c.addHost(h)
	}
	return c, nil
}

func tlsConfig(cfg ClientConfig) (*tls.Config, error) {
	return tlsconfig.Client(tlsconfig.Options{CAFile: cfg.CACert, CertFile: cfg.Cert, KeyFile: cfg.Key, NoVerify: cfg.Insecure})
}

// Host is the base URL of the node the client talks to now.
func (c *Client) Host() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[c.current]
}

// Hosts lists every node the client may fail over to, the current one first.
func (c *Client) Hosts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]string(nil), c.hosts[c.current:]...)
	return append(out, c.hosts[:c.current]...)
}

func (c *Client) addHost(h string) {
	h = strings.TrimRight(h, "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, known := range c.hosts {
		if known == h {
			return
		}
	}
	c.hosts = append(c.hosts, h)
}

// request is one HTTP call. Its body is data, or opened by body (called again for each node tried, so that
// a request can be sent a second time after a failover) and size bytes long.
type request struct {
	method, path string
	query        url.Values
	data         []byte
	body         func() (io.ReadCloser, error)
	size         int64
	contentType  string
	stream       bool // no timeout
	read         bool // changes nothing: may be sent again to another node whatever happened
}

func jsonRequest(method, path string, v any) request {
	b, _ := json.Marshal(v) // values built by the shell itself: strings, numbers, slices and maps
	return request{method: method, path: path, data: b, contentType: "application/json"}
}

// electionWait is how long a request answered "503 leader not found" (an election is under way) is tried
// again before the answer is passed on. Such a request was not run, so retrying is safe.
const electionWait = 10 * time.Second

// do sends r as failover does, trying again while the cluster has no leader.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	deadline := time.Now().Add(electionWait)
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		resp, err := c.failover(ctx, r)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable || time.Now().Add(pause).After(deadline) {
			return resp, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if !bytes.Contains(body, []byte("leader not found")) {
			// Another refusal (not the leader, store not open): pass it on as it came.
			resp.Body = io.NopCloser(bytes.NewReader(body))
			return resp, nil
		}
		select {
		case <-ctx.Done():
			return nil, errInterrupted
		case <-time.After(pause):
		}
	}
}

// failover sends r to the current node, moving on to the next node whenever the current one cannot be
// reached. A request that may have reached a node is not sent again unless it is a read: a write whose
// connection broke may have been applied, and sending it twice could apply it twice.
func (c *Client) failover(ctx context.Context, r request) (*http.Response, error) {
	hosts := c.Hosts()
	var firstErr error
	for i, host := range hosts {
		resp, err := c.send(ctx, host, r)
		if err == nil {
			if i > 0 {
				c.moveTo(host)
				if r.path != "/nodes" {
					// The cluster may have changed while the old node was away: learn it again.
					dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_ = c.Discover(dctx)
					cancel()
				}
			}
			return resp, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil || !(r.method == http.MethodGet || r.read || neverSent(err)) {
			break
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, errInterrupted
	}
	return nil, firstErr
}

func (c *Client) send(ctx context.Context, host string, r request) (*http.Response, error) {
	u := host + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.data != nil {
		body = bytes.NewReader(r.data) // sets the Content-Length
	} else if r.body != nil {
		rc, err := r.body()
		if err != nil {
			return nil, err
		}
		body = rc
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		if c, ok := body.(io.Closer); ok {
			c.Close()
		}
		return nil, err
	}
	if r.body != nil {
		req.ContentLength = r.size
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if c.user != "" {
		user, pass, _ := strings.Cut(c.user, ":")
		req.SetBasicAuth(user, pass)
	}
	hc := c.http
	if r.stream {
		hc = c.stream
	}
	resp, err := hc.Do(req)
	if err != nil {
		if neverSent(err) {
			return nil, fmt.Errorf("cannot reach %s: %w", host, unwrapURLError(err))
		}
		return nil, fmt.Errorf("%s %s%s: %w", r.method, host, r.path, unwrapURLError(err))
	}
	return resp, nil
}

func (c *Client) moveTo(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, h := range c.hosts {
		if h == host {
			c.current = i
		}
	}
}

var errInterrupted = errors.New("interrupted")

// neverSent reports whether err means the request cannot have reached the node: the connection was
// refused or never established.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Discover learns the other members' HTTP addresses from /nodes, so that failover works without a list of
// alternatives. Members keep the scheme of the current host.
func (c *Client) Discover(ctx context.Context) error {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: "/nodes", query: url.Values{"nonvoters": {""}, "ver": {"2"}}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	var out struct {
		Nodes []struct {
			APIAddr string `json:"api_addr"`
		} `json:"nodes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("decode /nodes: %w", err)
	}
	scheme, _, _ := strings.Cut(c.Host(), "://")
	for _, n := range out.Nodes {
		if n.APIAddr == "" {
			continue
		}
		if strings.Contains(n.APIAddr, "://") {
			c.addHost(n.APIAddr)
		} else {
			c.addHost(scheme + "://" + n.APIAddr)
		}
	}
	return nil
}

// httpError turns a non-2xx answer into an error carrying the node's own message.
func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(b))
	var shaped struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &shaped) == nil && shaped.Error != "" {
		msg = shaped.Error
	}
	empty := msg == ""
	if empty {
		msg = resp.Status
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("unauthorized: check the user and password (-u user:pass): %s", msg)
	case http.StatusForbidden:
		return fmt.Errorf("forbidden: the user lacks the permission: %s", msg)
	}
	if empty {
		// rqlite's 404 and 405 have no body: the status is all there is to say.
		return fmt.Errorf("the node answered %s", resp.Status)
	}
	return fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)
}
