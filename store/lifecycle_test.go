package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// openTestStore opens (without starting) a node whose configuration mod may change.
func openTestStore(t *testing.T, mod func(*Config)) *Store {
	t.Helper()
	addr := freeAddr(t)
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), NodeID: "n", RaftAddr: addr, HTTPAddr: "127.0.0.1:1",
		Listener: mustListen(t, addr), Voter: true, BootstrapGrace: 100 * time.Millisecond, Logger: testLogger(t, "n")}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Closing twice is harmless; the second returns at once.
func TestCloseTwice(t *testing.T) {
	s := openTestStore(t, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Close(ctx); err != nil || time.Since(start) > time.Second {
		t.Fatalf("second Close: %v after %s", err, time.Since(start))
	}
}

// A node closed before it ever started stops cleanly.
func TestCloseWithoutStart(t *testing.T) {
	s := openTestStore(t, nil)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Close while Start waits (here for a -join target that never answers) makes Start return, and leaves
// nothing running (TestMain checks for goroutines).
func TestCloseDuringStart(t *testing.T) {
	s := openTestStore(t, func(c *Config) {
		c.Join = []string{freeAddr(t)} // nothing listens there
		c.JoinAttempts, c.JoinInterval = 1000, 50*time.Millisecond
	})
	started := make(chan error, 1)
	go func() { started <- s.Start(context.Background()) }()
	time.Sleep(200 * time.Millisecond) // Start is trying to join by now
	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()
	select {
	case err := <-started:
		if !errors.Is(err, ErrStopped) {
			t.Errorf("Start ended with %v, want ErrStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after Close")
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// A start that fails (here a peers.json that is not one) leaves nothing running once the node is closed.
func TestFailedStartLeavesNothingRunning(t *testing.T) {
	s := openTestStore(t, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a leader", 10*time.Second, s.IsLeader)
	dir, cfg := s.cfg.DataDir, s.cfg
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "raft", "peers.json"), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Listener = mustListen(t, cfg.RaftAddr)
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Fatal("started with a peers.json that is not JSON")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
