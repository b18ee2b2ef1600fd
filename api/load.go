package api

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/store"
)

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// handleLoad serves /db/load: a SQLite file replaces the database on every node, through
// the log; any other body is SQL (a dump) run as one request that stops and rolls back at its first error.
func (s *Service) handleLoad(w http.ResponseWriter, r *http.Request, p *params) {
	body, ok := s.readBodyLimit(w, r, s.maxLoad)
	if !ok {
		return
	}
	start := time.Now()
	if !bytes.HasPrefix(body, sqliteHeader) {
		// SQL is loaded as written: no rewriting (the replicas' clock and random functions agree anyway).
		req := &command.Request{Mode: command.Mode_MODE_EXECUTE, RollbackOnError: true,
			Statements: []*command.Statement{{Sql: string(body)}}}
		s.write(w, r, p, req, newEnv(), start)
		return
	}
	if err := s.store.ValidateDatabase(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	gz, err := store.GzipLoad(body)
	if errors.Is(err, store.ErrLoadTooLarge) {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		failed(w, err, "load", http.StatusInternalServerError)
		return
	}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	var index uint64
	servedBy, done, err := s.viaLeader(w, r, p,
		func() (err error) { index, err = s.store.Load(ctx, gz); return err },
		func() error { return s.store.ForwardLoad(ctx, gz) })
	if done {
		return
	}
	if err != nil {
		failed(w, err, "load", http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Rqlite-Served-By", servedBy)
	s.respond(w, p, start, store.Response{RaftIndex: index})
}

// handleBoot serves /boot: a single-node cluster takes a SQLite file, of any size, at the
// speed of the disk, without passing it through the log.
func (s *Service) handleBoot(w http.ResponseWriter, r *http.Request, p *params) {
	br := bufio.NewReaderSize(s.body(w, r, 1<<62), 1<<20)
	head, _ := br.Peek(len(sqliteHeader))
	if !bytes.Equal(head, sqliteHeader) {
		http.Error(w, "invalid SQLite data", http.StatusBadRequest)
		return
	}
	if !s.store.IsLeader() {
		http.Error(w, store.ErrNotLeader.Error(), http.StatusServiceUnavailable)
		return
	}
	f, err := os.CreateTemp(filepath.Join(s.store.DataDir(), "snapshots"), "boot-*.db")
	if err != nil {
		http.Error(w, "boot: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	path := f.Name()
	defer os.Remove(path)
	_, err = io.Copy(f, br)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		ctx, cancel := s.requestContext(r, p)
		err = s.store.Boot(ctx, path)
		cancel()
	}
	if errors.Is(err, store.ErrNotSingleNode) {
		http.Error(w, err.Error(), http.StatusServiceUnavailable) // rqlite's words, bare
		return
	}
	if errors.Is(err, db.ErrNotADatabase) {
		// The upload began like a SQLite file but is not one: the client's mistake, as /db/load says too.
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err != nil {
		failed(w, err, "boot", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("X-Rqlite-Served-By", s.servedByLocal())
	w.WriteHeader(http.StatusOK)
}
