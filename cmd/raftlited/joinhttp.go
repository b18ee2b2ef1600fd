package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/raftlite/raftlite/command"
)

// resolveHTTP returns how a node resolves a -join target given as an HTTP address: it asks that node's
// /status for its Raft address (presenting the -join-as credentials, which may read it with only a join
// permission).
func resolveHTTP(client *http.Client, joinAs *command.Credentials) func(ctx context.Context, base string) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, base string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/status?key=store.addr", nil)
		if err != nil {
			return "", err
		}
		if joinAs != nil {
			req.SetBasicAuth(joinAs.GetUsername(), joinAs.GetPassword())
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s/status: %s", base, resp.Status)
		}
		var addr string
		if err := json.NewDecoder(resp.Body).Decode(&addr); err != nil || addr == "" {
			return "", fmt.Errorf("GET %s/status: no store.addr in the answer", base)
		}
		return addr, nil
	}
}
