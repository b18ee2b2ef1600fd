package system_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's commands, as a new user types them. The repository's root is the parent of this package.
const repoRoot = ".."

func needMake(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed; these tests check the Makefile's targets")
	}
}

// make clean removes the build outputs and never data: not ./data, which make run writes, nor anything
// else in the tree.
func TestMakeCleanKeepsData(t *testing.T) {
	needMake(t)
	dir := t.TempDir()
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{ // path: whether make clean should remove it
		"raftlited": true, "raftlite": true, "raftlite-bench": true,
		"data/db.sqlite": false, "data/raft/log": false, "data2/db.sqlite": false, "notes.txt": false,
	}
	os.WriteFile(filepath.Join(dir, "Makefile"), mk, 0o644)
	for f := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("make", "-C", dir, "clean").CombinedOutput(); err != nil {
		t.Fatalf("make clean: %v\n%s", err, out)
	}
	for f, removed := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		switch {
		case removed && err == nil:
			t.Errorf("make clean left %s", f)
		case !removed && (err != nil || string(b) != f):
			t.Errorf("make clean took %s: %v", f, err)
		}
	}
}

// make run builds ./raftlited and runs it with ARGS as flags and DATA as its data directory: a working node,
// which stops cleanly on SIGINT as with Ctrl-C.
func TestMakeRunArgsAndData(t *testing.T) {
	needMake(t)
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TAGS := (.*)$`).FindSubmatch(mk)
	if m == nil || strings.Join(strings.Fields(string(m[1])), ",") != strings.ReplaceAll(buildTags(), " ", ",") {
		// make run would compile SQLite with other tags than this test's: minutes, unless cached.
		t.Skipf("run through make test, which builds with the Makefile's tags (this test binary has %q)", buildTags())
	}
	data := filepath.Join(t.TempDir(), "my data")
	n := &node{t: t, id: "mk1", dir: data, httpAddr: freePort(t), raftAddr: freePort(t)}
	var out bytes.Buffer
	cmd := exec.Command("make", "-C", repoRoot, "run", "DATA="+data,
		"ARGS=-node-id "+n.id+" -http-addr "+n.httpAddr+" -raft-addr "+n.raftAddr)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the node is make's child: signal them both
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	// DATA has a space in it: the Makefile passes it as one argument.
	waitFor(t, "the node make run starts", 2*time.Minute, func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("make run exited: %v\n%s", err, out.String())
		default:
		}
		return n.isLeader()
	})
	if id := n.storeField("node_id"); id != "mk1" {
		t.Errorf("node_id %v, want mk1 (from ARGS)", id)
	}
	if dir, _ := n.storeField("dir").(string); dir != data {
		t.Errorf("data directory %q, want %q (DATA)", dir, data)
	}
	n.mustExecute("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)", []any{"INSERT INTO foo(name) VALUES(?)", "fiona"})
	if c, err := n.count("foo"); err != nil || c != 1 {
		t.Errorf("count: %d %v", c, err)
	}
	if _, err := os.Stat(filepath.Join(data, "raft")); err != nil {
		t.Errorf("nothing in DATA: %v", err)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-done:
		done <- nil
	case <-time.After(30 * time.Second):
		t.Fatalf("make run did not stop on SIGINT:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "./raftlited -node-id mk1 -http-addr "+n.httpAddr) {
		t.Errorf("make run's output does not show the command it ran:\n%s", out.String())
	}
}
