package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// profileDuring fetches a CPU profile of n, lasting d, into dir (named after the scenario and cluster
// size) while the scenario runs, and returns a function that waits for it. With no dir it does nothing.
func profileDuring(dir string, n *node, clusterSize int, scenario string, d time.Duration) func() {
	if dir == "" {
		return func() {}
	}
	secs := max(1, int(d.Seconds())-1)
	name := fmt.Sprintf("%dnode-%s.pprof", clusterSize, slug(scenario))
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
		resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", n.http, secs))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
		}
	}()
	return func() { <-done }
}

// slug turns a scenario description into a file name.
func slug(s string) string {
	s, _, _ = strings.Cut(s, ":")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}
