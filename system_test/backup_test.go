package system_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/testservers"
)

// writeJSONFile writes v as a configuration file and returns its path.
func writeJSONFile(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func s3Sub(s *testservers.S3, bucket, key string) map[string]any {
	return map[string]any{"endpoint": s.Endpoint, "region": "us-east-1", "access_key_id": s.AccessKey,
		"secret_access_key": s.SecretKey, "bucket": bucket, "path": key, "force_path_style": true}
}

// vars reads one map of the node's /debug/vars.
func (n *node) vars(key string) map[string]float64 {
	resp, err := n.client().Get(n.url("/debug/vars?key=" + key))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out map[string]map[string]float64
	json.NewDecoder(resp.Body).Decode(&out)
	return out[key]
}

func sumVar(nodes []*node, key, name string) float64 {
	var sum float64
	for _, n := range nodes {
		sum += n.vars(key)[name]
	}
	return sum
}

// sqliteCount opens a backup (gzipped or not) with the sqlite3 shell and counts a table's rows.
func sqliteCount(t *testing.T, backup []byte, table string) string {
	t.Helper()
	if len(backup) > 2 && backup[0] == 0x1f && backup[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(backup))
		if err != nil {
			t.Fatal(err)
		}
		if backup, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	os.WriteFile(path, backup, 0o600)
	out, err := exec.Command("sqlite3", path, "PRAGMA integrity_check; SELECT count(*) FROM "+table).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 on the backup: %v %s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 || lines[0] != "ok" {
		t.Fatalf("sqlite3 on the backup: %q", out)
	}
	return lines[1]
}

// createItems creates the items table with rows 0..rows-1 in one request, so that no backup falls between
// the table and its rows.
func createItems(t *testing.T, n *node, rows int) {
	t.Helper()
	stmts := []any{"CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"}
	for i := 0; i < rows; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO items(id, name) VALUES (%d, 'item %d')", i, i))
	}
	n.mustExecute(stmts...)
}

func insertRows(t *testing.T, n *node, from, to int) {
	t.Helper()
	var stmts []any
	for i := from; i < to; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO items(id, name) VALUES (%d, 'item %d')", i, i))
	}
	n.mustExecute(stmts...)
}

// A 3-node cluster backs up to a real S3-compatible server (versitygw, which checks every signature):
// only the leader uploads, only when the data changed, a new leader does not upload what is there
// already; then a brand-new 3-node cluster restores from the bucket with every row.
func TestAutoBackupAndRestoreS3(t *testing.T) {
	s3 := testservers.StartS3(t)
	s3.Bucket(t, "bkt")
	cfg := writeJSONFile(t, map[string]any{"version": 1, "type": "s3", "interval": "500ms", "sub": s3Sub(s3, "bkt", "cluster/db.sqlite.gz")})
	nodes := cluster(t, 3, "-auto-backup", cfg)
	leader := waitLeader(t, nodes...)
	leader.mustExecute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
	insertRows(t, leader, 0, 200)
	waitFor(t, "an upload with every row", 20*time.Second, func() bool {
		b, err := s3.Object("bkt", "cluster/db.sqlite.gz")
		return err == nil && len(b) > 0 && sqliteCount(t, b, "items") == "200"
	})
	// The upload is gzipped (the default), and only the leader ever counted anything.
	if b, _ := s3.Object("bkt", "cluster/db.sqlite.gz"); b[0] != 0x1f || b[1] != 0x8b {
		t.Error("the backup is not gzipped")
	}
	for _, f := range followers(leader, nodes) {
		if v := f.vars("uploader"); v["num_uploads_ok"]+v["num_uploads_skipped"]+v["num_uploads_skipped_id"] != 0 {
			t.Errorf("follower %s uploaded or skipped: %v", f.id, v)
		}
	}
	// No writes: intervals pass, nothing is uploaded.
	ok := sumVar(nodes, "uploader", "num_uploads_ok")
	skipped := leader.vars("uploader")["num_uploads_skipped"]
	waitFor(t, "three skipped intervals", 10*time.Second, func() bool { return leader.vars("uploader")["num_uploads_skipped"] >= skipped+3 })
	if got := sumVar(nodes, "uploader", "num_uploads_ok"); got != ok {
		t.Fatalf("uploads without a write: %v, was %v", got, ok)
	}
	st := leader.status()["auto_backups"].(map[string]any)
	if st["upload_destination"] != s3.Endpoint+"/bkt/cluster/db.sqlite.gz" || st["last_error"] != "" || st["last_upload_bytes"].(float64) == 0 ||
		st["sub"].(map[string]any)["secret_access_key"] != "********" {
		t.Errorf("/status auto_backups: %v", st)
	}

	// Leadership moves: the new leader finds the data stored, by its ID, and uploads nothing.
	target := followers(leader, nodes)[0]
	client := &http.Client{Timeout: 10 * time.Second}
	if resp, body := do(t, client, "POST", leader.url("/leader?wait"), "application/json", `{"id":"`+target.id+`"}`); resp.StatusCode != 200 {
		t.Fatalf("stepdown: %d %s", resp.StatusCode, body)
	}
	newLeader := waitLeader(t, nodes...)
	waitFor(t, "the new leader to find the backup stored", 10*time.Second, func() bool {
		return newLeader.vars("uploader")["num_uploads_skipped_id"] >= 1
	})
	waitFor(t, "two more skipped intervals", 10*time.Second, func() bool {
		return newLeader.vars("uploader")["num_uploads_skipped"] >= 2
	})
	if got := sumVar(nodes, "uploader", "num_uploads_ok"); got != ok {
		t.Fatalf("the new leader uploaded unchanged data: %v uploads, was %v", got, ok)
	}
	insertRows(t, newLeader, 200, 300)
	waitFor(t, "the new leader's upload", 20*time.Second, func() bool {
		b, err := s3.Object("bkt", "cluster/db.sqlite.gz")
		return err == nil && sqliteCount(t, b, "items") == "300"
	})
	if newLeader.vars("uploader")["num_uploads_ok"] < 1 {
		t.Error("the upload was not the new leader's")
	}
	// The Prometheus series say the same.
	resp, body := do(t, client, "GET", newLeader.url("/metrics"), "", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `raftlite_backup_uploads_total{result="uploaded"} 1`) ||
		!strings.Contains(body, `raftlite_backup_uploads_total{result="skipped_present"} 1`) {
		t.Errorf("/metrics lacks the upload counters:\n%s", grepLines(body, "raftlite_backup_"))
	}

	// A brand-new cluster, started from the bucket.
	restoreCfg := writeJSONFile(t, map[string]any{"version": 1, "type": "s3", "timeout": "30s", "sub": s3Sub(s3, "bkt", "cluster/db.sqlite.gz")})
	fresh := bootstrapGroup(t, "r", 3, "-auto-restore", restoreCfg)
	for _, n := range fresh {
		waitFor(t, n.id+" ready with every row", 30*time.Second, func() bool {
			c, err := n.count("items")
			return err == nil && c == 300
		})
	}
	if got := sumVar(fresh, "store", "num_auto_restores"); got != 1 {
		t.Errorf("%v nodes restored, want exactly 1 (the first leader)", got)
	}
	if got := sumVar(fresh, "downloader", "num_downloads_ok"); got != 3 {
		t.Errorf("%v downloads, want 3", got)
	}
	waitConverged(t, fresh...)
	// Restarted, the restored nodes have data: no second restore.
	fresh[0].stop()
	waitStopped(t, fresh[0])
	fresh[0].start()
	waitFor(t, "the restarted node serving", 20*time.Second, func() bool { c, err := fresh[0].count("items"); return err == nil && c == 300 })
	if fresh[0].vars("store")["num_auto_restores_skipped"] != 1 || fresh[0].vars("downloader")["num_downloads_ok"] != 0 {
		t.Errorf("restart of a restored node: store %v, downloader %v", fresh[0].vars("store"), fresh[0].vars("downloader"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func waitStopped(t *testing.T, n *node) {
	t.Helper()
	waitFor(t, n.id+" to exit", 20*time.Second, func() bool { return !n.running() })
}

// bootstrapGroup starts count nodes that form one cluster with -bootstrap-expect.
func bootstrapGroup(t *testing.T, prefix string, count int, flags ...string) []*node {
	t.Helper()
	var nodes []*node
	for i := 1; i <= count; i++ {
		nodes = append(nodes, newNode(t, fmt.Sprintf("%s%d", prefix, i)))
	}
	var joins []string
	for _, n := range nodes {
		joins = append(joins, n.raftAddr)
	}
	for _, n := range nodes {
		n.flags = append([]string{"-bootstrap-expect", fmt.Sprint(count), "-join", strings.Join(joins, ",")}, flags...)
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() { n.start() })
	}
	wg.Wait()
	waitVoters(t, nodes, count)
	return nodes
}

// Type file with timestamped, uncompressed backups; then a new node restores from the directory. And GCS
// (fake-gcs-server, behind the stand-in token endpoint's guard), backup then restore.
func TestAutoBackupFileAndGCS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	cfg := writeJSONFile(t, map[string]any{"type": "file", "interval": "300ms", "timestamp": true, "no_compress": true,
		"sub": map[string]any{"dir": dir, "name": "db.sqlite"}})
	gcs := testservers.StartGCS(t, "gbkt")
	tokens := testservers.StartTokenServer(t)
	gcsSub := map[string]any{"endpoint": tokens.Guard(t, gcs.Endpoint), "project_id": "p", "bucket": "gbkt", "name": "node/db.sqlite.gz",
		"credentials_path": tokens.CredentialsFile}
	gcsCfg := writeJSONFile(t, map[string]any{"type": "gcs", "interval": "300ms", "sub": gcsSub})

	n := newNode(t, "f1", "-auto-backup", cfg).start()
	g := newNode(t, "g1", "-auto-backup", gcsCfg).start()
	for _, x := range []*node{n, g} {
		waitLeader(t, x)
		createItems(t, x, 50)
	}
	var meta struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Name      string `json:"name"`
	}
	waitFor(t, "METADATA.json", 10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "METADATA.json"))
		return err == nil && json.Unmarshal(b, &meta) == nil
	})
	base := filepath.Base(meta.Name)
	if filepath.Dir(meta.Name) != dir || len(base) != len("20060102150405_db.sqlite") || !strings.HasSuffix(base, "_db.sqlite") || meta.ID == "" {
		t.Fatalf("METADATA.json %+v", meta)
	}
	b, err := os.ReadFile(meta.Name)
	if err != nil || !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) || sqliteCount(t, b, "items") != "50" {
		t.Fatalf("the timestamped backup is not a plain SQLite file with every row (%v)", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "METADATA.json")); fi.Mode().Perm() != 0o644 {
		t.Errorf("METADATA.json mode %v", fi.Mode().Perm())
	}

	restoreFile := writeJSONFile(t, map[string]any{"type": "file", "sub": map[string]any{"dir": dir, "name": base}})
	r := newNode(t, "fr", "-auto-restore", restoreFile).start()
	waitFor(t, "the node restored from the directory", 20*time.Second, func() bool { c, err := r.count("items"); return err == nil && c == 50 })

	waitFor(t, "the GCS upload", 10*time.Second, func() bool { return g.vars("uploader")["num_uploads_ok"] >= 1 })
	restoreGCS := writeJSONFile(t, map[string]any{"type": "gcs", "sub": gcsSub})
	rg := newNode(t, "gr", "-auto-restore", restoreGCS).start()
	waitFor(t, "the node restored from GCS", 20*time.Second, func() bool { c, err := rg.count("items"); return err == nil && c == 50 })
	if st := g.status()["auto_backups"].(map[string]any); st["upload_destination"] != "gs://gbkt/node/db.sqlite.gz" {
		t.Errorf("GCS destination %v", st["upload_destination"])
	}
}

// Uploads that fail (wrong credentials, a missing bucket, a server that dies mid-upload or is down)
// are reported in /status and retried at the next interval; the node serves writes throughout.
func TestAutoBackupFailures(t *testing.T) {
	s3 := testservers.StartS3(t)
	s3.Bucket(t, "bkt")
	wrong := s3Sub(s3, "bkt", "a.gz")
	wrong["secret_access_key"] = "wrong-secret"
	noBucket := s3Sub(s3, "nosuchbucket", "b.gz")
	proxy := testservers.StartProxy(t, strings.TrimPrefix(s3.Endpoint, "http://"))
	viaProxy := s3Sub(s3, "bkt", "c.gz")
	viaProxy["endpoint"] = "http://" + proxy.Addr

	cases := []struct {
		name string
		sub  map[string]any
		want string
	}{
		{"wrong secret", wrong, "check the access key"},
		{"missing bucket", noBucket, "does the bucket exist?"},
		{"cut mid-upload", viaProxy, "failed to upload to http://" + proxy.Addr + "/bkt/c.gz"},
	}
	proxy.CutAfter(2 << 10)
	nodes := make([]*node, len(cases))
	for i, c := range cases {
		cfg := writeJSONFile(t, map[string]any{"type": "s3", "interval": "300ms", "sub": c.sub})
		nodes[i] = newNode(t, fmt.Sprintf("e%d", i), "-auto-backup", cfg).start()
		waitLeader(t, nodes[i])
		nodes[i].mustExecute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
		// Enough data that the cut falls inside the upload's body.
		nodes[i].mustExecute("INSERT INTO items(name) VALUES (hex(randomblob(10000)))", "INSERT INTO items(name) VALUES (hex(randomblob(10000)))")
	}
	for i, c := range cases {
		n := nodes[i]
		waitFor(t, c.name+": a failed upload", 20*time.Second, func() bool { return n.vars("uploader")["num_uploads_fail"] >= 2 })
		st := n.status()["auto_backups"].(map[string]any)
		if msg, _ := st["last_error"].(string); !strings.Contains(msg, c.want) {
			t.Errorf("%s: last_error %q lacks %q", c.name, msg, c.want)
		}
		if _, err := n.execute("INSERT INTO items(name) VALUES ('still writable')"); err != nil {
			t.Errorf("%s: a write failed: %v", c.name, err)
		}
		if resp, err := http.Get(n.url("/readyz")); err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: not ready: %v", c.name, err)
		}
	}
	if proxy.Cuts() == 0 {
		t.Fatal("the proxy cut no upload")
	}
	// The server is back: the next interval uploads.
	proxy.CutAfter(0)
	waitFor(t, "the upload once the connection holds", 20*time.Second, func() bool { _, err := s3.Object("bkt", "c.gz"); return err == nil })
	// The server goes down, and comes back.
	before := nodes[2].vars("uploader")["num_uploads_fail"]
	s3.Stop()
	nodes[2].mustExecute("INSERT INTO items(name) VALUES ('while the server is down')")
	waitFor(t, "a failure while the server is down", 20*time.Second, func() bool { return nodes[2].vars("uploader")["num_uploads_fail"] > before })
	s3.Start()
	ok := nodes[2].vars("uploader")["num_uploads_ok"]
	waitFor(t, "an upload once the server is back", 20*time.Second, func() bool { return nodes[2].vars("uploader")["num_uploads_ok"] > ok })
}

// Restores that cannot work stop the node with a message that says why, unless continue_on_failure.
func TestAutoRestoreFailures(t *testing.T) {
	s3 := testservers.StartS3(t)
	s3.Bucket(t, "bkt")
	// A truncated backup: the first half of a gzipped database.
	src := newNode(t, "src").start()
	waitLeader(t, src)
	src.mustExecute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
	insertRows(t, src, 0, 500)
	resp, body := do(t, http.DefaultClient, "GET", src.url("/db/backup?compress"), "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("backup: %d", resp.StatusCode)
	}
	if err := os.WriteFile(filepath.Join(s3.Root, "bkt", "truncated.gz"), []byte(body[:len(body)/2]), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s3.Root, "bkt", "text.db"), []byte("this is no database, only a text file that somebody put here"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) (string, error) {
		n := newNode(t, name, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := n.command()
		cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, c := range []struct{ key, want string }{
		{"truncated.gz", "the backup is gzipped but damaged"},
		{"text.db", "not a SQLite database"},
		{"missing.gz", "failed to download from " + s3.Endpoint + "/bkt/missing.gz"},
	} {
		cfg := writeJSONFile(t, map[string]any{"type": "s3", "sub": s3Sub(s3, "bkt", c.key)})
		out, err := run("bad-"+strings.TrimSuffix(c.key, filepath.Ext(c.key)), "-auto-restore", cfg)
		if err == nil || !strings.Contains(out, "failed to download auto-restore file") || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %v, output lacks %q:\n%s", c.key, err, c.want, out)
		}
	}
	// With continue_on_failure the node starts empty and serves.
	cfg := writeJSONFile(t, map[string]any{"type": "s3", "continue_on_failure": true, "sub": s3Sub(s3, "bkt", "truncated.gz")})
	n := newNode(t, "cont", "-auto-restore", cfg).start()
	waitLeader(t, n)
	n.mustExecute("CREATE TABLE fresh (x)")
	if b, _ := os.ReadFile(n.logPath); !strings.Contains(string(b), "continuing with node startup anyway") {
		t.Error("the log does not say the node went on without the backup")
	}
	if n.vars("store")["num_auto_restores_failed"] != 1 || n.vars("downloader")["num_downloads_ok"] != 1 {
		t.Errorf("counters: store %v downloader %v", n.vars("store"), n.vars("downloader"))
	}
	// Bad configuration is fatal even with continue_on_failure; -auto-restore with -join is refused.
	bad := writeJSONFile(t, map[string]any{"type": "s3", "continue_on_failure": true, "sub": map[string]any{"bucket": "b"}})
	if out, err := run("badcfg", "-auto-restore", bad); err == nil || !strings.Contains(out, `sub.path\" is missing`) {
		t.Errorf("bad restore config: %v\n%s", err, out)
	}
	if out, err := run("join", "-auto-restore", cfg, "-join", src.httpAddr); err == nil || !strings.Contains(out, "auto-restoring cannot be used when joining a cluster") {
		t.Errorf("-auto-restore with -join: %v\n%s", err, out)
	}
	badBackup := writeJSONFile(t, map[string]any{"type": "s3", "interval": "0s", "sub": s3Sub(s3, "bkt", "x")})
	if out, err := run("badbackup", "-auto-backup", badBackup); err == nil || !strings.Contains(out, "failed to start auto-backups") || !strings.Contains(out, "invalid interval") {
		t.Errorf("bad backup config: %v\n%s", err, out)
	}
}

// Timestamped, uncompressed and vacuumed backups to S3: one object per upload, each a plain SQLite file
// holding the data as of its upload.
func TestAutoBackupS3Options(t *testing.T) {
	s3 := testservers.StartS3(t)
	s3.Bucket(t, "bkt")
	cfg := writeJSONFile(t, map[string]any{"type": "s3", "interval": "300ms", "timestamp": true, "no_compress": true, "vacuum": true,
		"sub": s3Sub(s3, "bkt", "ts/db.sqlite")})
	n := newNode(t, "o1", "-auto-backup", cfg).start()
	waitLeader(t, n)
	createItems(t, n, 10)
	waitFor(t, "the first upload", 10*time.Second, func() bool { return len(s3.Keys(t, "bkt", "ts/")) == 1 })
	time.Sleep(1100 * time.Millisecond) // the next upload's name is a second later
	insertRows(t, n, 10, 30)
	waitFor(t, "the second upload", 10*time.Second, func() bool { return len(s3.Keys(t, "bkt", "ts/")) == 2 })
	keys := s3.Keys(t, "bkt", "ts/")
	counts := map[string]bool{}
	for _, k := range keys {
		if len(k) != len("ts/20060102150405_db.sqlite") || !strings.HasSuffix(k, "_db.sqlite") {
			t.Errorf("object name %q is not timestamped", k)
		}
		b, err := s3.Object("bkt", k)
		if err != nil || !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) {
			t.Fatalf("%s is not a plain SQLite file (%v)", k, err)
		}
		counts[sqliteCount(t, b, "items")] = true
	}
	if !counts["10"] || !counts["30"] {
		t.Errorf("the two uploads hold %v rows, want 10 and 30", counts)
	}
	if st := n.status()["auto_backups"].(map[string]any); !strings.Contains(st["last_upload_object"].(string), "_db.sqlite") ||
		st["vacuum"] != true || st["compress"] != false || st["timestamp"] != true {
		t.Errorf("/status auto_backups: %v", st)
	}
}
