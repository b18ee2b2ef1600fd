// Package system_test runs real raftlited processes on loopback and tests the cluster through its HTTP
// API: formation, forwarding, kill -9, restarts, snapshots, wiped data directories, membership.
package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var raftlitedBin, raftliteBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftlite-system-")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	raftlitedBin = filepath.Join(dir, "raftlited")
	build := exec.Command("go", "build", "-tags", buildTags(), "-o", raftlitedBin, "github.com/raftlite/raftlite/cmd/raftlited")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("build raftlited: %v\n%s", err, out)
		os.Exit(1)
	}
	raftliteBin = filepath.Join(dir, "raftlite")
	build = exec.Command("go", "build", "-o", raftliteBin, "github.com/raftlite/raftlite/cmd/raftlite")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("build raftlite: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildTags are the tags this test binary was built with (make test passes go-sqlite3's feature tags), so
// that the server under test has the same SQLite features.
func buildTags() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-tags" {
				return s.Value
			}
		}
	}
	return ""
}

// node is one raftlited process.
type node struct {
	t        *testing.T
	id       string
	dir      string
	httpAddr string
	raftAddr string
	raftAdv  string // advertised Raft address (a fault proxy), if not raftAddr
	flags    []string
	env      []string // extra environment
	prefix   []string // a command that runs raftlited (given as its arguments), as nsenter does; none if empty
	// script: prefix is a script that runs raftlited itself (a container's entry point), given n.flags only
	script  bool
	logPath string
	scheme  string       // "https" for a node serving TLS; "" means http
	hc      *http.Client // for a secured node: trusts its CA and sends credentials

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

var portMu sync.Mutex

// freePort returns a port nothing listens on now. Ports come from the kernel's ephemeral range, so two
// tests in parallel do not pick the same one.
func freePort(t *testing.T) string {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newNode(t *testing.T, id string, flags ...string) *node {
	t.Helper()
	base := t.TempDir()
	n := &node{t: t, id: id, dir: filepath.Join(base, "data"), httpAddr: freePort(t), raftAddr: freePort(t),
		flags: flags, logPath: filepath.Join(base, id+".log")}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			b, _ := os.ReadFile(n.logPath)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("---- log of %s (last lines) ----\n%s", id, strings.Join(lines, "\n"))
		}
	})
	return n
}

func (n *node) args() []string {
	args := []string{"-node-id", n.id, "-http-addr", n.httpAddr, "-raft-addr", n.raftAddr,
		"-raft-election-timeout", "500ms", "-raft-heartbeat-timeout", "500ms", "-join-interval", "250ms", "-join-attempts", "80"}
	if n.raftAdv != "" {
		args = append(args, "-raft-adv-addr", n.raftAdv)
	}
	args = append(args, n.flags...)
	return append(args, n.dir)
}

// command is the node's process, not started.
func (n *node) command() *exec.Cmd {
	argv := append(append(append([]string{}, n.prefix...), raftlitedBin), n.args()...)
	if n.script {
		argv = append(append([]string{}, n.prefix...), n.flags...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), n.env...)
	return cmd
}

// start launches the process and waits until its HTTP API answers.
func (n *node) start() *node {
	n.t.Helper()
	n.mu.Lock()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := n.command()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	waitFor(n.t, n.id+" HTTP API", 20*time.Second, func() bool {
		select {
		case <-done:
			n.t.Fatalf("%s exited during start", n.id)
		default:
		}
		resp, err := n.client().Get(n.url("/status"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return n
}

func (n *node) signal(sig syscall.Signal) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
}

func (n *node) kill() { n.signal(syscall.SIGKILL) }

// pause stops the process (SIGSTOP) for d, then lets it go on.
func (n *node) pause(d time.Duration) {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGCONT)
}

func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}
func (n *node) stop() { n.signal(syscall.SIGTERM) }

func (n *node) url(path string) string {
	if n.scheme != "" {
		return n.scheme + "://" + n.httpAddr + path
	}
	return "http://" + n.httpAddr + path
}

func (n *node) client() *http.Client {
	if n.hc != nil {
		return n.hc
	}
	return client
}

var client = &http.Client{Timeout: 30 * time.Second}

// result is one statement's outcome in rqlite's JSON.
type result struct {
	Columns      []string `json:"columns"`
	Types        []string `json:"types"`
	Values       [][]any  `json:"values"`
	LastInsertID int64    `json:"last_insert_id"`
	RowsAffected int64    `json:"rows_affected"`
	Error        string   `json:"error"`
}

type response struct {
	Results   []result `json:"results"`
	Error     string   `json:"error"`
	RaftIndex uint64   `json:"raft_index"`
}

func (n *node) post(path string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	resp, err := n.client().Post(n.url(path), "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// execute sends statements to /db/execute; an error means the write was not acknowledged.
func (n *node) execute(stmts ...any) (response, error) {
	code, body, err := n.post("/db/execute?raft_index&timeout=5s", stmts)
	if err != nil {
		return response{}, err
	}
	if code != 200 {
		return response{}, fmt.Errorf("status %d: %s", code, body)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return response{}, fmt.Errorf("decode %s: %w", body, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("request error: %s", r.Error)
	}
	for _, res := range r.Results {
		if res.Error != "" {
			return r, fmt.Errorf("statement error: %s", res.Error)
		}
	}
	return r, nil
}

func (n *node) mustExecute(stmts ...any) response {
	n.t.Helper()
	r, err := n.execute(stmts...)
	if err != nil {
		n.t.Fatalf("execute on %s: %v", n.id, err)
	}
	return r
}

func (n *node) query(sql, level string) (result, error) { return n.queryWith(sql, "level="+level) }

// queryWith reads with extra query parameters (already encoded, joined by &).
func (n *node) queryWith(sql, params string) (result, error) {
	resp, err := n.client().Get(n.url("/db/query?" + params + "&q=" + url.QueryEscape(sql)))
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return result{}, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return result{}, err
	}
	if r.Error != "" {
		return result{}, fmt.Errorf("%s", r.Error)
	}
	if len(r.Results) != 1 || r.Results[0].Error != "" {
		return result{}, fmt.Errorf("query %q: %s", sql, body)
	}
	return r.Results[0], nil
}

// count reads the row count of table on this node, without a leader.
func (n *node) count(table string) (int64, error) {
	r, err := n.query("SELECT count(*) FROM "+table, "none")
	if err != nil {
		return 0, err
	}
	return int64(r.Values[0][0].(float64)), nil
}

func (n *node) status() map[string]any {
	resp, err := n.client().Get(n.url("/status"))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func (n *node) storeField(path ...string) any {
	var cur any = n.status()
	for _, p := range append([]string{"store"}, path...) {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (n *node) isLeader() bool { return n.storeField("raft", "state") == "Leader" }

func (n *node) applied() uint64 {
	f, _ := n.storeField("raft", "applied_index").(float64)
	return uint64(f)
}

// dump is the node's database as SQL text, read locally.
func (n *node) dump() string {
	resp, err := n.client().Get(n.url("/db/backup?fmt=sql&noleader"))
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (n *node) nodes() map[string]map[string]any {
	resp, err := n.client().Get(n.url("/nodes?nonvoters&timeout=2s"))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// cluster starts n nodes: the first bootstraps, the others join through the first one's HTTP address.
func cluster(t *testing.T, n int, flags ...string) []*node {
	t.Helper()
	first := newNode(t, "n1", flags...).start()
	waitLeader(t, first)
	nodes := []*node{first}
	for i := 2; i <= n; i++ {
		// n2 joins through the first node's bare HTTP address, later nodes through the previous node (a
		// follower) given as an http:// URL.
		through := first.httpAddr
		if i > 2 {
			through = "http://" + nodes[i-2].httpAddr
		}
		nd := newNode(t, fmt.Sprintf("n%d", i), append([]string{"-join", through}, flags...)...).start()
		nodes = append(nodes, nd)
	}
	waitVoters(t, nodes, n)
	return nodes
}

func waitLeader(t *testing.T, nodes ...*node) *node {
	t.Helper()
	var leader *node
	waitFor(t, "a leader", 20*time.Second, func() bool {
		for _, n := range nodes {
			if n.isLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// waitVoters waits until every running node sees want voters.
func waitVoters(t *testing.T, nodes []*node, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d voters", want), 30*time.Second, func() bool {
		for _, n := range nodes {
			list, _ := n.storeField("nodes").([]any)
			voters := 0
			for _, e := range list {
				if m, ok := e.(map[string]any); ok && m["suffrage"] == "voter" {
					voters++
				}
			}
			if voters != want {
				return false
			}
		}
		return true
	})
}

// waitConverged waits until all nodes hold the same data, and returns it.
func waitConverged(t *testing.T, nodes ...*node) string {
	t.Helper()
	var dump string
	waitFor(t, "identical databases on every node", 30*time.Second, func() bool {
		dump = nodes[0].dump()
		if strings.HasPrefix(dump, "error") {
			return false
		}
		for _, n := range nodes[1:] {
			if n.dump() != dump {
				return false
			}
		}
		return true
	})
	return dump
}

func followers(leader *node, nodes []*node) []*node {
	var out []*node
	for _, n := range nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

var _ = context.Background

func httpDelete(u, body string) (int, error) {
	req, _ := http.NewRequest(http.MethodDelete, u, strings.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
