package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// measureCatchup boots a database of o.catchup MiB into a one-node cluster, then measures how fast a new
// node receives it (it must come as a snapshot: the log does not hold the booted data), and how long the
// first node takes to start again with it.
func measureCatchup(o options, dir string, limits map[string]string) error {
	dir = filepath.Join(dir, "catchup")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	file := filepath.Join(dir, "big.db")
	if err := makeDB(file, o.catchup); err != nil {
		return err
	}
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	first, err := newNode(o.binary, dir, 1, "")
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
	start := time.Now()
	if err := first.boot(file); err != nil {
		return err
	}
	boot := time.Since(start)
	limits[fmt.Sprintf("/boot of a %d MiB database into a one-node cluster", fi.Size()>>20)] =
		fmt.Sprintf("%.2f s (%.0f MB/s)", boot.Seconds(), float64(fi.Size())/1e6/boot.Seconds())

	second, err := newNode(o.binary, dir, 2, first.http)
	if err != nil {
		return err
	}
	start = time.Now()
	if err := second.start(); err != nil {
		return err
	}
	defer second.stop()
	var want status
	first.getJSON("/status", &want)
	for {
		var st status
		if second.getJSON("/status", &st) == nil && st.Store.Raft.AppliedIndex >= want.Store.Raft.AppliedIndex && st.Store.Raft.AppliedIndex > 0 {
			if _, err := second.get("/db/query?level=none&q=SELECT+count(*)+FROM+big"); err == nil {
				break
			}
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("the new node did not catch up in 10 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	catch := time.Since(start)
	limits[fmt.Sprintf("a new node receives the %d MiB database (start to caught up)", fi.Size()>>20)] =
		fmt.Sprintf("%.2f s (%.0f MB/s)", catch.Seconds(), float64(fi.Size())/1e6/catch.Seconds())

	first.stop()
	start = time.Now()
	if err := first.start(); err != nil {
		return err
	}
	for {
		if _, err := first.get("/status"); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	limits[fmt.Sprintf("restart of a node holding %d MiB, until its API answers", fi.Size()>>20)] = fmt.Sprintf("%.2f s", time.Since(start).Seconds())
	return nil
}

// makeDB writes a SQLite database of about size MiB.
func makeDB(path string, size int) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=DELETE&_synchronous=OFF")
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(fmt.Sprintf(`CREATE TABLE big (id INTEGER PRIMARY KEY, b BLOB);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d)
		INSERT INTO big(b) SELECT randomblob(4000) FROM c`, size*256))
	return err
}

// boot installs the SQLite file at path into the node (a one-node cluster) with /boot.
func (n *node) boot(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	resp, err := client.Post("http://"+n.http+"/boot", "application/octet-stream", f)
	if _, err := readOK(resp, err); err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	return nil
}
