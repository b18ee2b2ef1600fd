package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// fsyncsPerSecond measures how many small write+fsync pairs the disk under dir completes per second: the
// ceiling of any design that fsyncs once per write.
func fsyncsPerSecond(dir string, d time.Duration) (float64, error) {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 512)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// sqliteInsertsPerSecond measures raw SQLite on the same disk, with the pragmas a raftlite node uses (WAL,
// synchronous=NORMAL), one connection, one insert per transaction.
func sqliteInsertsPerSecond(dir string, d time.Duration) (float64, error) {
	path := filepath.Join(dir, "raw.sqlite")
	defer os.Remove(path)
	defer os.Remove(path + "-wal")
	defer os.Remove(path + "-shm")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=NORMAL")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		return 0, err
	}
	stmt, err := db.Prepare("INSERT INTO bench(id, v) VALUES(?, ?)")
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		n++
		if _, err := stmt.Exec(n, "benchmark row"); err != nil {
			return 0, fmt.Errorf("raw insert: %w", err)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
