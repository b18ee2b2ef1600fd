package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type node struct {
	http, raft, dir string
	args            []string
	binary          string
	cmd             *exec.Cmd
}

type cluster struct{ nodes []*node }

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 1024}, Timeout: 60 * time.Second}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func newNode(binary, dir string, id int, join string, extra ...string) (*node, error) {
	n, err := newBareNode(binary, dir, id)
	if err != nil {
		return nil, err
	}
	n.args = append(n.args, "-log-level", "WARN")
	if join != "" {
		n.args = append(n.args, "-join", join)
	}
	n.args = append(append(n.args, extra...), n.dir)
	return n, nil
}

// newBareNode is a node on free loopback ports with only the flags rqlited takes too (-node-id, -http-addr,
// -raft-addr); the caller adds the rest, the data directory last.
func newBareNode(binary, dir string, id int) (*node, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	raftAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	n := &node{http: httpAddr, raft: raftAddr, dir: filepath.Join(dir, fmt.Sprintf("node%d", id)), binary: binary}
	n.args = []string{"-node-id", fmt.Sprint(id), "-http-addr", httpAddr, "-raft-addr", raftAddr}
	return n, nil
}

func (n *node) start() error {
	n.cmd = exec.Command(n.binary, n.args...)
	logf, err := os.OpenFile(n.dir+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	return n.cmd.Start()
}

func (n *node) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGTERM)
		n.cmd.Wait()
		n.cmd = nil
	}
}

func startCluster(binary, dir string, size int) (*cluster, error) {
	return startClusterWith(binary, dir, size)
}

// startClusterWith starts a cluster whose every node gets the extra flags.
func startClusterWith(binary, dir string, size int, extra ...string) (*cluster, error) {
	return startInTurn(dir, size, func(i int, c *cluster) (*node, error) {
		join := ""
		if i > 1 {
			join = c.nodes[0].http
		}
		return newNode(binary, dir, i, join, extra...)
	})
}

// startInTurn starts size nodes made by newAt, each once the one before it is ready; on a failure it
// stops those already started.
func startInTurn(dir string, size int, newAt func(i int, c *cluster) (*node, error)) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &cluster{}
	for i := 1; i <= size; i++ {
		n, err := newAt(i, c)
		if err == nil {
			err = n.start()
		}
		if err != nil {
			c.stop()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		if err := n.waitReady(60 * time.Second); err != nil {
			c.stop()
			return nil, fmt.Errorf("node %d: %w (log in %s.log)", i, err, n.dir)
		}
	}
	return c, nil
}

// startClusterQuick is startClusterWith, but the nodes after the first join at the same time.
func startClusterQuick(binary, dir string, size int, extra ...string) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &cluster{}
	for i := 1; i <= size; i++ {
		join := ""
		if i > 1 {
			join = c.nodes[0].http
		}
		n, err := newNode(binary, dir, i, join, extra...)
		if err != nil {
			c.kill()
			return nil, err
		}
		if err := n.start(); err != nil {
			c.kill()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		if i == 1 || i == size {
			for j := range c.nodes {
				if err := c.nodes[j].waitReady(60 * time.Second); err != nil {
					c.kill()
					return nil, fmt.Errorf("node %d: %w (log in %s.log)", j+1, err, c.nodes[j].dir)
				}
			}
		}
	}
	return c, nil
}

// kill ends every node at once with SIGKILL: for clusters whose data is thrown away.
func (c *cluster) kill() {
	for _, n := range c.nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			n.cmd.Process.Kill()
		}
	}
	for _, n := range c.nodes {
		if n.cmd != nil {
			n.cmd.Wait()
			n.cmd = nil
		}
	}
}

func (c *cluster) stop() {
	for _, n := range c.nodes {
		n.stop()
	}
}

type status struct {
	Store struct {
		Raft struct {
			State        string `json:"state"`
			AppliedIndex uint64 `json:"applied_index"`
		} `json:"raft"`
		Nodes []struct{ Suffrage string } `json:"nodes"`
	} `json:"store"`
}

// leader waits for a leader that sees every node voting.
func (c *cluster) leader() (*node, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			var st status
			if n.getJSON("/status", &st) == nil && st.Store.Raft.State == "Leader" && voters(st) == len(c.nodes) {
				return n, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, errors.New("no leader with every node voting")
}

// benchLeader waits for the leader and creates the table the scenarios write and read.
func (c *cluster) benchLeader() (*node, error) {
	leader, err := c.leader()
	if err != nil {
		return nil, err
	}
	return leader, leader.exec("CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT)")
}

// leaderFirst is every node, the leader first.
func (c *cluster) leaderFirst(leader *node) []*node {
	out := []*node{leader}
	for _, n := range c.nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) follower(leader *node) *node {
	for _, n := range c.nodes {
		if n != leader {
			return n
		}
	}
	return nil
}

func voters(st status) int {
	v := 0
	for _, n := range st.Store.Nodes {
		if strings.EqualFold(n.Suffrage, "voter") { // rqlite says "Voter"
			v++
		}
	}
	return v
}

func (n *node) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := n.get("/readyz"); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("not ready in time")
}

func (n *node) get(path string) ([]byte, error) {
	resp, err := client.Get("http://" + n.http + path)
	return readOK(resp, err)
}

func (n *node) post(path string, body []byte) ([]byte, error) {
	resp, err := client.Post("http://"+n.http+path, "application/json", bytes.NewReader(body))
	return readOK(resp, err)
}

func (n *node) getJSON(path string, v any) error {
	b, err := n.get(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func readOK(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return b, nil
}

// exec posts statements and fails on any error in the answer.
func (n *node) exec(stmts ...any) error {
	body, _ := json.Marshal(stmts)
	b, err := n.post("/db/execute", body)
	if err != nil {
		return err
	}
	if bytes.Contains(b, []byte(`"error"`)) {
		return fmt.Errorf("execute: %s", b)
	}
	return nil
}

// rss is the resident memory of the node's process.
func (n *node) rss() uint64 {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// sampleRSS records the peak resident memory of n until the returned function is called.
func sampleRSS(n *node, peak *uint64) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if r := n.rss(); r > *peak {
				*peak = r
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "memory unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return fmt.Sprintf("%.0f GiB memory", float64(kb)/(1<<20))
		}
	}
	return "memory unknown"
}
