package system_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smallDisks gives n a database directory and a Raft log directory on small filesystems of their own: two
// tmpfs of size each, mounted at n.dir and n.dir/raft in a mount namespace, inside a user namespace
// (unshare -Urm), so that no root is needed. A holder process keeps the namespaces for the length of the
// test, and n's process enters them (nsenter) each time it starts: the filesystems and their contents
// outlive a restart of the node, as a disk would. Root and other users take the same path.
//
// The returned path is where this process sees n.dir as n does: the holder's root, seen through /proc.
func smallDisks(t *testing.T, n *node, size string) string {
	t.Helper()
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const script = `mount -t tmpfs -o size="$2" tmpfs "$1" && mkdir "$1/raft" && mount -t tmpfs -o size="$2" tmpfs "$1/raft" && echo mounted && exec sleep infinity`
	holder := exec.Command("unshare", "-Urm", "sh", "-c", script, "sh", n.dir, size)
	var stderr bytes.Buffer
	holder.Stderr = &stderr
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatalf("the disk-full test mounts tmpfs filesystems in a user namespace: unshare: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "mounted\n" {
		holder.Wait()
		t.Fatalf("mounting tmpfs filesystems in a user namespace (unshare -Urm, which needs user namespaces enabled): %s", stderr.String())
	}
	pid := strconv.Itoa(holder.Process.Pid)
	n.prefix = []string{"nsenter", "-t", pid, "-U", "-m", "--preserve-credentials", "--"}
	return filepath.Join("/proc", pid, "root", n.dir)
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

// A node whose disk fills up stops serving with a clear error, does not lead, and loses nothing; when
// space returns it catches up by itself, and every acknowledged write is on every node. The node's
// database and its Raft log sit on filesystems of their own, so that each case fills exactly what it
// names: the database first (what a node usually meets: its log segments are small), or the log.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leads  bool   // the full node leads when its disk fills
		filled string // "db" or "raft"
	}{
		{"leader database", true, "db"},
		{"follower database", false, "db"},
		{"leader log", true, "raft"},
	} {
		t.Run(tc.name, func(t *testing.T) { diskFull(t, tc.leads, tc.filled) })
	}
}

func diskFull(t *testing.T, leads bool, filled string) {
	n1 := newNode(t, "n1").start()
	waitLeader(t, n1)
	n2 := newNode(t, "n2", "-join", n1.raftAddr).start()
	n3 := newNode(t, "n3", "-join", n1.raftAddr)
	n3dir := smallDisks(t, n3, "48m")
	n3.start()
	nodes := []*node{n1, n2, n3}
	waitVoters(t, nodes, 3)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE acked (id INTEGER PRIMARY KEY)", "CREATE TABLE probes (pad TEXT)")
	target := "n1"
	if leads {
		target = "n3"
	}
	if resp, body := do(t, client, "POST", leader.url("/leader?wait"), "application/json", `{"id":"`+target+`"}`); resp.StatusCode != 200 && leader.id != target {
		t.Fatalf("hand leadership to %s: %d %s", target, resp.StatusCode, body)
	}
	waitFor(t, target+" to lead", 10*time.Second, func() bool { return nodes[map[string]int{"n1": 0, "n3": 2}[target]].isLeader() })
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
	dir := n3dir
	if filled == "raft" {
		dir = filepath.Join(n3dir, "raft")
	}
	filler := fill(t, dir)
	t.Logf("n3's %s filesystem is full", filled)

	// Writes to n3 are refused with a clear error at once; they never hang until a timeout.
	waitFor(t, "n3 to refuse writes with a disk-full error", 10*time.Second, func() bool {
		start := time.Now()
		_, err := n3.execute([]any{"INSERT INTO probes(pad) VALUES('through n3')"})
		if time.Since(start) > 3*time.Second {
			t.Errorf("a write to the full node took %s", time.Since(start))
		}
		return err != nil && strings.Contains(err.Error(), "disk full")
	})
	waitFor(t, "n3 to give up leading", 10*time.Second, func() bool { return !n3.isLeader() })
	newLeader := waitLeader(t, n1, n2)
	t.Logf("%s leads now", newLeader.id)
	if _, err := n3.query("SELECT 1", "none"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("a read on the full node: %v, want a disk-full error", err)
	}
	code, body := n3.readyz()
	if code != 503 || !strings.Contains(body, "disk full") {
		t.Errorf("readyz on the full node: %d %q", code, body)
	}
	if fault, _ := n3.storeField("fault").(string); !strings.Contains(fault, "disk full") {
		t.Errorf("/status store.fault on the full node: %q", fault)
	}
	// The others go on writing without n3.
	before := len(w.snapshot())
	time.Sleep(2 * time.Second)
	if after := len(w.snapshot()); after <= before {
		t.Errorf("no write was acknowledged in 2 s while n3's disk was full (%d before, %d after)", before, after)
	}
	close(stopProbing)
	<-probing
	t.Logf("slowest write through n3 from before the disk filled until now: %s", slowest)
	if slowest > 3*time.Second {
		t.Errorf("a write under way on n3 when its disk filled took %s to be answered", slowest)
	}
	os.Remove(filler)
	t.Logf("space freed")
	waitFor(t, "n3 ready again", 20*time.Second, func() bool { c, _ := n3.readyz(); return c == 200 })
	if _, err := n3.execute([]any{"INSERT INTO probes(pad) VALUES('after')"}); err != nil {
		t.Errorf("a write through n3 after space returned: %v", err)
	}
	acked := w.halt()
	t.Logf("%d writes acknowledged", len(acked))
	checkAcked(t, acked, nodes...)
	logb, _ := os.ReadFile(n3.logPath)
	log := string(logb)
	if !strings.Contains(log, "disk full") {
		t.Error("the full node did not say why it stopped")
	}
	// Said once, not once per retry.
	if k := strings.Count(log, "cannot apply committed entries"); k > 2 {
		t.Errorf("the full node said %d times that it cannot apply", k)
	}
}
