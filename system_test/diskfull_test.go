package system_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mountTmpfs puts a small tmpfs at dir, for the length of the test. It needs root (CI runs as root).
func mountTmpfs(t *testing.T, dir string, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("this test needs root, to mount a small tmpfs for a node's data: mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fill writes into dir until the filesystem is full, and returns the filler's path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	// and the last few bytes
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			return path
		}
	}
}

// A node whose disk fills up stops taking writes with a clear error and loses nothing; when space returns
// it catches up, and every acknowledged write is on every node.
func TestDiskFull(t *testing.T) {
	n1 := newNode(t, "n1").start()
	waitLeader(t, n1)
	n2 := newNode(t, "n2", "-join", n1.raftAddr).start()
	n3 := newNode(t, "n3", "-join", n1.raftAddr)
	mountTmpfs(t, n3.dir, "48m")
	n3.start()
	nodes := []*node{n1, n2, n3}
	waitVoters(t, nodes, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)", "CREATE TABLE probes (pad TEXT)")
	// n3 leads, so that its full disk is felt by the writes it serves itself.
	if resp, body := do(t, client, "POST", leader.url("/leader?wait"), "application/json", `{"id":"n3"}`); resp.StatusCode != 200 && leader != n3 {
		t.Fatalf("hand leadership to n3: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "n3 to lead", 10*time.Second, n3.isLeader)
	w := startWriters(t, nodes, 4)
	// A client writing through n3 all along has requests under way when the disk fills: they must be
	// answered too, not left to their timeout.
	var slowest time.Duration
	stopProbing := make(chan struct{})
	probing := make(chan struct{})
	go func() {
		defer close(probing)
		for {
			select {
			case <-stopProbing:
				return
			default:
			}
			start := time.Now()
			n3.execute([]any{"INSERT INTO probes(pad) VALUES('under way')"})
			slowest = max(slowest, time.Since(start))
		}
	}()
	time.Sleep(500 * time.Millisecond)
	filler := fill(t, n3.dir)
	t.Logf("n3's disk is full")

	// Writes to n3 are refused with a clear error, or (once it has lost the leadership it cannot use) are
	// forwarded to a leader that can write; they never hang until a timeout.
	sawError := false
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		start := time.Now()
		_, err := n3.execute([]any{"INSERT INTO probes(pad) VALUES('through n3')"})
		if time.Since(start) > 3*time.Second {
			t.Errorf("a write to the full node took %s", time.Since(start))
		}
		if err != nil && strings.Contains(err.Error(), "disk full") {
			sawError = true
		}
		if sawError {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("writes through the full node: refused with a disk-full error: %v", sawError)
	if !sawError {
		t.Error("the full node did not refuse writes with a clear error")
	}
	if n3.isLeader() {
		t.Error("a node that cannot write its log still claims to lead")
	}
	if _, err := n3.query("SELECT 1", "weak"); err == nil {
		t.Error("the full node served a weak read as if it led")
	}
	resp, body := do(t, client, "GET", n3.url("/readyz"), "", "")
	if resp.StatusCode != 503 || !strings.Contains(body, "disk full") {
		t.Errorf("readyz on the full node: %d %q", resp.StatusCode, body)
	}
	time.Sleep(2 * time.Second) // the others go on writing without n3
	close(stopProbing)
	<-probing
	t.Logf("slowest write through n3 from before the disk filled until now: %s", slowest)
	if slowest > 3*time.Second {
		t.Errorf("a write under way on n3 when its disk filled took %s to be answered", slowest)
	}
	os.Remove(filler)
	t.Logf("space freed")
	acked := w.halt()
	t.Logf("%d writes acknowledged", len(acked))
	checkAcked(t, acked, nodes...)
	resp, _ = do(t, client, "GET", n3.url("/readyz"), "", "")
	if resp.StatusCode != 200 {
		t.Errorf("readyz after space returned: %d", resp.StatusCode)
	}
	logb, _ := os.ReadFile(n3.logPath)
	if !strings.Contains(string(logb), "disk full") {
		t.Error("the full node did not say why it stopped")
	}
}
