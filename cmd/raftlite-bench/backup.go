package main

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The automatic backup measurements (-only Backup, and -backup N for the size timings), against versitygw
// (an S3-compatible server; scripts/test-deps.sh builds it into the tools cache):
//   - the 32-client insert load on a 3-node cluster holding a 64 MiB table, with -auto-backup uploading
//     every 500 ms (every interval has new data, so uploads follow one another for the whole run) and
//     without, fresh clusters, alternating, medians;
//   - the time to back up, and to restore a new node from, an N MiB database.

const backupScenario = "Backup: 32 clients, one insert per request, during uploads vs without"

// s3Server is a versitygw process with a bucket "bench".
type s3Server struct {
	endpoint string
	cmd      *exec.Cmd
}

func startS3(dir string) (*s3Server, error) {
	bin, err := findTool("versitygw")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "s3")
	if err := os.MkdirAll(filepath.Join(root, "bench"), 0o700); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--access", "benchkey", "--secret", "benchsecret", "--port", addr, "--quiet", "posix", root)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			cmd.Process.Kill()
			return nil, fmt.Errorf("versitygw does not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &s3Server{endpoint: "http://" + addr, cmd: cmd}, nil
}

func (s *s3Server) stop() { s.cmd.Process.Kill(); s.cmd.Wait() }

// config writes an -auto-backup or -auto-restore file for key and returns its path.
func (s *s3Server) config(dir, name, key, extra string) (string, error) {
	path := filepath.Join(dir, name)
	cfg := fmt.Sprintf(`{"type":"s3",%s"sub":{"endpoint":%q,"region":"us-east-1","access_key_id":"benchkey","secret_access_key":"benchsecret","bucket":"bench","path":%q,"force_path_style":true}}`,
		extra, s.endpoint, key)
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	dirs := []string{os.Getenv("RAFTLITE_TOOLS")}
	if cache, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(cache, "raftlite", "tools"))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "bin", name); d != "" {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found: run make test-deps, which builds it into the tools cache", name)
}

type backupRound struct{ off, on, uploads float64 }

// measureBackupLoad compares the insert load with and without uploads under way.
func measureBackupLoad(o options, dir string, s3 *s3Server, limits map[string]string) error {
	cfg, err := s3.config(dir, "backup.json", "load/db.sqlite.gz", `"interval":"500ms",`)
	if err != nil {
		return err
	}
	var rounds []backupRound
	for r := 0; r < o.runs; r++ {
		var round backupRound
		for _, on := range []bool{false, true} {
			var extra []string
			if on {
				extra = []string{"-auto-backup", cfg}
			}
			rate, uploads, err := backupLoadOnce(o, filepath.Join(dir, fmt.Sprintf("b%d-%t", r, on)), extra)
			if err != nil {
				return err
			}
			if on {
				round.on, round.uploads = rate, uploads
			} else {
				round.off = rate
			}
			fmt.Fprintf(os.Stderr, "backup load, round %d, uploads %t: %.0f requests/s, %.0f uploads during the run\n", r+1, on, rate, uploads)
		}
		rounds = append(rounds, round)
	}
	var off, on, ratio, uploads []float64
	for _, r := range rounds {
		off, on, ratio, uploads = append(off, r.off), append(on, r.on), append(ratio, r.on/r.off), append(uploads, r.uploads)
	}
	limits[backupScenario+" (3 nodes, 64 MiB table, uploads every 500 ms)"] = fmt.Sprintf(
		"without: %.0f requests/s; during uploads: %.0f requests/s; ratio %.3f (median of the rounds' own: %.3f); %.0f uploads per %s run (median)",
		median(off), median(on), median(on)/median(off), median(ratio), median(uploads), o.duration)
	return nil
}

func backupLoadOnce(o options, dir string, extra []string) (rate, uploads float64, err error) {
	c, err := startClusterQuick(o.binary, dir, 3, extra...)
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	defer c.kill()
	leader, err := c.leader()
	if err != nil {
		return 0, 0, err
	}
	if err := seedBlobs(leader, 64); err != nil {
		return 0, 0, err
	}
	if err := leader.exec("CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		return 0, 0, err
	}
	before := uploadsOK(leader)
	m, err := runClients(32, o.duration, func(int) (int, error) { return insertOne(leader) })
	if err != nil {
		return 0, 0, err
	}
	return m.perSecond(), uploadsOK(leader) - before, nil
}

// seedBlobs writes a table of mib MiB of random (incompressible) data, 4 MiB per request. (Random blobs
// made in SQL would not do: randomblob() is one value per statement, for every replica to agree.)
func seedBlobs(n *node, mib int) error {
	if err := n.exec("CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB)"); err != nil {
		return err
	}
	blob := make([]byte, 1<<20)
	for i := 0; i < mib; i += 4 {
		var stmts []any
		for j := 0; j < 4; j++ {
			rand.Read(blob)
			stmts = append(stmts, fmt.Sprintf("INSERT INTO big(b) VALUES (X'%x')", blob))
		}
		if err := n.exec(stmts...); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	return nil
}

func uploadsOK(n *node) float64 {
	var v struct {
		Uploader map[string]float64 `json:"uploader"`
	}
	n.getJSON("/debug/vars?key=uploader", &v)
	return v.Uploader["num_uploads_ok"]
}

// measureBackupSize times one automatic backup of an o.backup MiB database and the restore of a new node
// from it.
func measureBackupSize(o options, dir string, s3 *s3Server, limits map[string]string) error {
	dir = filepath.Join(dir, "backupsize")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	file := filepath.Join(dir, "big.db")
	if err := makeDB(file, o.backup); err != nil {
		return err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	size := fi.Size() >> 20
	cfg, err := s3.config(dir, "backup.json", "size/db.sqlite.gz", `"interval":"1s",`)
	if err != nil {
		return err
	}
	first, err := newNode(o.binary, dir, 1, "", "-auto-backup", cfg)
	if err != nil {
		return err
	}
	if err := first.start(); err != nil {
		return err
	}
	defer first.stop()
	if err := first.waitReady(60 * time.Second); err != nil {
		return err
	}
	if err := first.boot(file); err != nil {
		return err
	}
	var rssPeak uint64
	rssBefore := first.rss()
	stopRSS := sampleRSS(first, &rssPeak)
	var st struct {
		AutoBackups struct {
			Duration string `json:"last_upload_duration"`
			Bytes    int64  `json:"last_upload_bytes"`
		} `json:"auto_backups"`
	}
	for start := time.Now(); uploadsOK(first) < 1; time.Sleep(100 * time.Millisecond) {
		if time.Since(start) > 30*time.Minute {
			return fmt.Errorf("no upload of the %d MiB database in 30 minutes", size)
		}
	}
	stopRSS()
	if err := first.getJSON("/status", &st); err != nil {
		return err
	}
	took, _ := time.ParseDuration(st.AutoBackups.Duration)
	limits[fmt.Sprintf("automatic backup of a %d MiB database (random data; copy, gzip, upload to versitygw on this machine)", size)] =
		fmt.Sprintf("%.1f s (%.0f MB/s of database; %d MiB uploaded); node RSS %s before, %s at most during", took.Seconds(),
			float64(fi.Size())/1e6/took.Seconds(), st.AutoBackups.Bytes>>20, mib(rssBefore), mib(rssPeak))
	first.stop()

	restoreCfg, err := s3.config(dir, "restore.json", "size/db.sqlite.gz", `"timeout":"30m",`)
	if err != nil {
		return err
	}
	second, err := newNode(o.binary, dir, 2, "", "-auto-restore", restoreCfg)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := second.start(); err != nil {
		return err
	}
	defer second.stop()
	var restorePeak uint64
	stopRestoreRSS := sampleRSS(second, &restorePeak)
	want := fmt.Sprint(o.backup * 256)
	for {
		b, err := second.get("/db/query?level=none&q=SELECT+count(*)+FROM+big")
		if err == nil && strings.Contains(string(b), "[["+want+"]]") {
			break
		}
		if time.Since(start) > 30*time.Minute {
			return fmt.Errorf("the restored node did not serve the data in 30 minutes (log in %s.log)", second.dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took = time.Since(start)
	stopRestoreRSS()
	limits["automatic restore of a new node from that backup (start to serving every row)"] =
		fmt.Sprintf("%.1f s (%.0f MB/s of database); node RSS at most %s", took.Seconds(), float64(fi.Size())/1e6/took.Seconds(), mib(restorePeak))
	return nil
}
