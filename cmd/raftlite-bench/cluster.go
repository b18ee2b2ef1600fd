package main

import (
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
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type node struct {
	http string
	cmd  *exec.Cmd
}

type cluster struct{ nodes []*node }

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 1024}, Timeout: 30 * time.Second}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startCluster(binary, dir string, n int) (*cluster, error) {
	c := &cluster{}
	var first string
	for i := 1; i <= n; i++ {
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		raftAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := []string{"-node-id", fmt.Sprint(i), "-http-addr", httpAddr, "-raft-addr", raftAddr, "-log-level", "WARN"}
		if first != "" {
			args = append(args, "-join", first)
		}
		args = append(args, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		cmd := exec.Command(binary, args...)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		nd := &node{http: httpAddr, cmd: cmd}
		c.nodes = append(c.nodes, nd)
		if first == "" {
			first = httpAddr
		}
		if err := nd.waitReady(30 * time.Second); err != nil {
			c.stop()
			return nil, fmt.Errorf("node %d: %w (log in %s)", i, err, dir)
		}
	}
	return c, nil
}

func (c *cluster) stop() {
	for _, n := range c.nodes {
		n.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, n := range c.nodes {
		n.cmd.Wait()
	}
}

func (c *cluster) leader() (*node, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			var st struct {
				Store struct {
					Raft  struct{ State string } `json:"raft"`
					Nodes []struct{ Suffrage string }
				}
			}
			if n.get("/status", &st) == nil && st.Store.Raft.State == "Leader" && voters(st.Store.Nodes) == len(c.nodes) {
				return n, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, errors.New("no leader with every node voting")
}

func voters(ns []struct{ Suffrage string }) int {
	v := 0
	for _, n := range ns {
		if n.Suffrage == "voter" {
			v++
		}
	}
	return v
}

func (n *node) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + n.http + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not ready in time")
}

func (n *node) get(path string, v any) error {
	resp, err := client.Get("http://" + n.http + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// exec posts statements and fails on any error in the answer.
func (n *node) exec(stmts ...any) error {
	body, _ := json.Marshal(stmts)
	resp, err := client.Post("http://"+n.http+"/db/execute", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || bytes.Contains(b, []byte(`"error"`)) {
		return fmt.Errorf("execute: %d %s", resp.StatusCode, b)
	}
	return nil
}

var nextID atomic.Int64

func insert(n *node) error {
	return n.exec([]any{"INSERT INTO bench(id, v) VALUES(?, ?)", nextID.Add(1), "benchmark row"})
}

func serialInserts(n *node, count int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, count)
	for i := 0; i < count; i++ {
		start := time.Now()
		if err := insert(n); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

func concurrentInserts(n *node, clients int, d time.Duration) (float64, []time.Duration, error) {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	stop := time.Now().Add(d)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stop) {
				t := time.Now()
				if err := insert(n); err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if first != nil {
		return 0, nil, first
	}
	return float64(len(lat)) / time.Since(start).Seconds(), lat, nil
}
