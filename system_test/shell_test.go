package system_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// shellRun runs the raftlite shell with args and the given standard input, and returns its output and exit
// status.
func shellRun(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(raftliteBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run raftlite: %v", err)
	}
	return out.String(), errOut.String(), code
}

func hostPort(n *node) []string {
	host, port, _ := strings.Cut(n.httpAddr, ":")
	return []string{"-H", host, "--port", port}
}

// The shell against a 3-node cluster, driven as users drive it: a script on standard input, one statement
// as an argument, a terminal, and a node going away under it.
func TestShell(t *testing.T) {
	nodes := cluster(t, 3)
	leader := waitLeader(t, nodes...)
	dir := t.TempDir()

	t.Run("script", func(t *testing.T) {
		script := `CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL);
INSERT INTO t(name, score)
  VALUES ('ann', 1.5),
         (NULL, 2);
SELECT * FROM t ORDER BY id;
.headers off
SELECT * FROM t ORDER BY id;
.HEADERS on
.mode csv
SELECT * FROM t ORDER BY id;
.mode json
SELECT * FROM t ORDER BY id;
.mode line
SELECT * FROM t ORDER BY id;
.mode column
CREATE INDEX t_name ON t(name);
.tables
.indexes
.schema t
.changes on
INSERT INTO t(name) VALUES ('cy');
.consistency linearizable
.consistency
SELECT count(*) AS n FROM t
`
		out, errOut, code := shellRun(t, script, nil, hostPort(nodes[1])...)
		if code != 0 || errOut != "" {
			t.Fatalf("exit %d, stderr:\n%s", code, errOut)
		}
		want := `ok
2 rows affected
+----+--------+-------+
| id | name   | score |
+----+--------+-------+
| 1  | ann    | 1.5   |
| 2  | <null> | 2     |
+----+--------+-------+
+---+--------+-----+
| 1 | ann    | 1.5 |
| 2 | <null> | 2   |
+---+--------+-----+
id,name,score
1,ann,1.5
2,,2
[
  {
    "id": 1,
    "name": "ann",
    "score": 1.5
  },
  {
    "id": 2,
    "name": null,
    "score": 2
  }
]
   id = 1
 name = ann
score = 1.5

   id = 2
 name = <null>
score = 2
ok
+------+
| name |
+------+
| t    |
+------+
+--------+-------+
| name   | table |
+--------+-------+
| t_name | t     |
+--------+-------+
CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL);
CREATE INDEX t_name ON t(name);
1 row affected, last insert ID: 3
linearizable
+---+
| n |
+---+
| 3 |
+---+
`
		if out != want {
			t.Fatalf("output:\n%s\nwant:\n%s", out, want)
		}
	})

	backup, dump := filepath.Join(dir, "backup.db"), filepath.Join(dir, "dump.sql")
	t.Run("files and errors", func(t *testing.T) {
		outFile, readFile := filepath.Join(dir, "out.txt"), filepath.Join(dir, "in.sql")
		os.WriteFile(readFile, []byte("-- a script\nINSERT INTO t(name)\n  VALUES ('from file');\n.mode csv\nSELECT name FROM t WHERE id = 4;\n"), 0o600)
		script := fmt.Sprintf(".output %s\nSELECT name FROM t WHERE id = 1;\n.output\n.read %s\n.mode column\n.backup %s\n.dump %s\n"+
			"SELECT nope FROM t;\n.nosuch\n.mode xml\n.consistency\n.nodes\n.leader\n.ready\n.status node\n", outFile, readFile, backup, dump)
		out, errOut, code := shellRun(t, script, nil, hostPort(leader)...)
		if code != 1 {
			t.Fatalf("a script with errors exited %d, want 1; stdout:\n%s", code, out)
		}
		for _, want := range []string{"Error: no such column: nope\n", "Error: unknown command .nosuch: enter .help for the list\n",
			`Error: unknown mode "xml": choose one of column, csv, json, line` + "\n"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		if b, _ := os.ReadFile(outFile); !strings.Contains(string(b), "| ann  |") {
			t.Errorf(".output file holds %q", b)
		}
		for _, want := range []string{"1 row affected\nname\nfrom file\n", "backup written to " + backup, "dump written to " + dump,
			"\nweak\n", "| leader   |", "| follower |", "\nready\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(out, "node:\n  current_time: ") {
			t.Errorf(".status node printed:\n%s", out)
		}
		if b, _ := os.ReadFile(backup); !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) {
			t.Errorf("the backup is not a SQLite file")
		}
		if b, _ := os.ReadFile(dump); !strings.Contains(string(b), "INSERT INTO \"t\" VALUES(4,'from file',NULL);") {
			t.Errorf("the dump lacks the row from the .read file:\n%s", b)
		}
	})

	t.Run("restore and boot", func(t *testing.T) {
		fresh := newNode(t, "fresh").start()
		waitLeader(t, fresh)
		if out, errOut, code := shellRun(t, "", nil, append(hostPort(fresh), ".restore "+dump)...); code != 0 || out != "database restored\n" {
			t.Fatalf(".restore of SQL: exit %d\n%s%s", code, out, errOut)
		}
		if n, err := fresh.count("t"); err != nil || n != 4 {
			t.Fatalf("after .restore the table holds %d rows (%v), want 4", n, err)
		}
		fresh.mustExecute("DELETE FROM t")
		if out, errOut, code := shellRun(t, "", nil, append(hostPort(fresh), ".boot "+backup)...); code != 0 || out != "node booted\n" {
			t.Fatalf(".boot: exit %d\n%s%s", code, out, errOut)
		}
		if n, err := fresh.count("t"); err != nil || n != 4 {
			t.Fatalf("after .boot the table holds %d rows (%v), want 4", n, err)
		}
		if _, errOut, code := shellRun(t, "", nil, append(hostPort(fresh), ".boot "+dump)...); code != 1 || !strings.Contains(errOut, "is not a SQLite database") {
			t.Fatalf(".boot of SQL text: exit %d, %s", code, errOut)
		}
	})

	t.Run("arguments and environment", func(t *testing.T) {
		out, errOut, code := shellRun(t, "", nil, append(hostPort(nodes[2]), "SELECT", "name", "FROM", "t", "WHERE", "id", "=", "1")...)
		if code != 0 || !strings.Contains(out, "| ann  |") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if _, errOut, code = shellRun(t, "", nil, append(hostPort(nodes[2]), "SELEC 1")...); code != 1 || !strings.Contains(errOut, "Error: ") {
			t.Fatalf("bad SQL: exit %d, stderr %q", code, errOut)
		}
		out, _, code = shellRun(t, "", []string{"RAFTLITE_HOST=http://" + nodes[2].httpAddr}, ".ready")
		if code != 0 || out != "ready\n" {
			t.Fatalf("RAFTLITE_HOST: exit %d, %q", code, out)
		}
		dead := freePort(t)
		host, port, _ := strings.Cut(dead, ":")
		if _, errOut, code = shellRun(t, "", nil, "-H", host, "-p", port, "SELECT 1"); code != 1 || !strings.Contains(errOut, "cannot reach http://"+dead) {
			t.Fatalf("unreachable node: exit %d, stderr %q", code, errOut)
		}
		// The first node is down; the alternative answers.
		if out, errOut, code = shellRun(t, "", nil, "-H", host, "-p", port, "-a", nodes[2].httpAddr, "SELECT 7"); code != 0 || !strings.Contains(out, "| 7 |") {
			t.Fatalf("with -a: exit %d\n%s%s", code, out, errOut)
		}
		if _, errOut, code = shellRun(t, "", nil, "-s", "gopher", "SELECT 1"); code != 2 || !strings.Contains(errOut, `scheme "gopher"`) {
			t.Fatalf("bad scheme: exit %d, %q", code, errOut)
		}
	})

	t.Run("comments, recursion, stepdown", func(t *testing.T) {
		loop := filepath.Join(dir, "loop.sql")
		os.WriteFile(loop, []byte(".read "+loop+"\n"), 0o600)
		out, errOut, code := shellRun(t, "-- a note\n.mode csv\nSELECT 1 AS one;\n.read "+loop+"\n", nil, hostPort(nodes[1])...)
		if !strings.HasPrefix(out, "one\n1\n") {
			t.Errorf("a comment line kept the dot-command from running: %q", out)
		}
		if code != 1 || !strings.Contains(errOut, "nested more than 16 deep") {
			t.Errorf("a file reading itself: exit %d, %q", code, errOut)
		}
		// Hand leadership to a named follower, then back.
		to := followers(leader, nodes)[0]
		if out, errOut, code := shellRun(t, "", nil, append(hostPort(nodes[1]), ".stepdown "+to.id)...); code != 0 {
			t.Fatalf(".stepdown %s: exit %d %s%s", to.id, code, out, errOut)
		}
		waitFor(t, to.id+" leading", 10*time.Second, to.isLeader)
		if out, errOut, code := shellRun(t, "", nil, append(hostPort(nodes[1]), ".stepdown "+leader.id)...); code != 0 {
			t.Fatalf(".stepdown %s: exit %d %s%s", leader.id, code, out, errOut)
		}
		waitFor(t, leader.id+" leading again", 10*time.Second, leader.isLeader)
	})

	t.Run("terminal", func(t *testing.T) { shellTerminal(t, nodes[1], dir) })
	// The endless query cancelled with Ctrl-C in the terminal stopped on the node that ran it too.
	waitFor(t, "the cancelled query to stop on every node", 10*time.Second, func() bool { return noReadsInProgress(nodes...) })

	t.Run("failover", func(t *testing.T) {
		// Connected to a follower, learning the others from the cluster (no -a given).
		victim := followers(leader, nodes)[0]
		cmd := exec.Command(raftliteBin, hostPort(victim)...)
		stdin, _ := cmd.StdinPipe()
		var out, errOut syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(stdin, "SELECT count(*) AS before FROM t;\n")
		waitFor(t, "the first answer", 10*time.Second, func() bool { return strings.Contains(out.String(), "before") })
		victim.kill()
		// As a user would, type the next statement a moment later. Sent at the very instant the node died,
		// a write could still go out on the shell's kept-alive connection to it, and a write whose
		// connection broke after it was sent is reported, not sent again (it may have been applied).
		time.Sleep(500 * time.Millisecond)
		io.WriteString(stdin, "INSERT INTO t(name) VALUES ('after failover');\nSELECT name FROM t WHERE name = 'after failover';\n")
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("shell failed after failover: %v\n%s%s", err, out.String(), errOut.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("shell hung after its node died:\n%s%s", out.String(), errOut.String())
		}
		if !strings.Contains(out.String(), "1 row affected\n") || !strings.Contains(out.String(), "| after failover |") || errOut.String() != "" {
			t.Fatalf("output after failover:\n%s%s", out.String(), errOut.String())
		}
	})
}

// shellTerminal drives the interactive shell through a pseudo-terminal: banner, prompt, a statement over
// two lines, Ctrl-C dropping a half-typed statement, Ctrl-C cancelling a request under way, a backup with its progress bar, Ctrl-D, history.
func shellTerminal(t *testing.T, n *node, dir string) {
	home := t.TempDir()
	cmd := exec.Command(raftliteBin, hostPort(n)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=xterm", "RAFTLITE_HISTFILE=")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var screen syncBuffer
	go io.Copy(&screen, tty)
	expect := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(screen.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q; it shows:\n%q", what, screen.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	send := func(keys string) {
		t.Helper()
		if _, err := io.WriteString(tty, keys); err != nil {
			t.Fatal(err)
		}
	}
	prompt := n.httpAddr + "> "
	expect("Connected to http://" + n.httpAddr + " running version v")
	expect(prompt)
	send("SELECT\r")
	expect("...> ")
	send("  41 + 1 AS answer;\r")
	expect("| 42     |")
	send("SELECT 'dropped'")
	expect("'dropped'")
	send("\x03") // Ctrl-C
	send("SELECT 'kept' AS word;\r")
	expect("| kept |")
	if strings.Contains(screen.String(), "| dropped") {
		t.Fatalf("Ctrl-C did not drop the statement being typed:\n%s", screen.String())
	}
	// Ctrl-C while a request runs cancels the request, not the shell.
	send("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) AS endless FROM c;\r")
	expect("AS endless FROM c;")
	time.Sleep(500 * time.Millisecond) // the request is under way: this query never ends by itself
	send("\x03")
	expect("interrupted")
	send("SELECT 'still here' AS word;\r")
	expect("| still here |")
	file := filepath.Join(dir, "tty-backup.db")
	send(".backup " + file + "\r")
	expect("backup written to " + file)
	if !progressLine.MatchString(screen.String()) {
		t.Errorf("no progress bar with a rate for .backup:\n%q", screen.String())
	}
	send("SELECT 'half'\r") // no ';': the statement goes on
	expect("...> ")
	send("\x04") // Ctrl-D on the empty continuation line
	expect("unfinished statement not run")
	expect("bye")
	if strings.Contains(screen.String(), "| half |") {
		t.Fatalf("Ctrl-D ran the unfinished statement:\n%s", screen.String())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the shell exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the shell did not exit on Ctrl-D")
	}
	hist, err := os.ReadFile(filepath.Join(home, ".raftlite_history"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hist), "SELECT 41 + 1 AS answer;\n") || strings.Contains(string(hist), "dropped") {
		t.Fatalf("history file:\n%s", hist)
	}
	if fi, _ := os.Stat(filepath.Join(home, ".raftlite_history")); fi.Mode().Perm() != 0o600 {
		t.Errorf("history file mode %v, want 0600", fi.Mode().Perm())
	}
}

var progressLine = regexp.MustCompile(`\rbackup [0-9.]+ (bytes|KiB|MiB)  [0-9.]+ (bytes|KiB|MiB|GiB)/s`)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
