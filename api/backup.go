package api

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/raftlite/raftlite/command"
	"github.com/raftlite/raftlite/db"
	"github.com/raftlite/raftlite/store"
)

// handleBackup serves GET /db/backup: fmt=binary (default), delete or sql, optionally
// gzipped (compress), sql limited to some tables, binary rebuilt compactly (vacuum). The leader's data is
// served (a follower streams it from the leader) unless noleader asks for this node's own.
func (s *Service) handleBackup(w http.ResponseWriter, r *http.Request, p *params) {
	format := store.BackupFormat(p.format)
	if p.vacuum && format == db.BackupSQL {
		http.Error(w, "invalid backup format: vacuum applies to binary backups only", http.StatusBadRequest)
		return
	}
	var tables []string
	for _, t := range strings.Split(p.tables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tables = append(tables, t)
		}
	}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	out := &responseStream{w: w, contentType: "application/octet-stream", servedBy: s.servedByLocal()}
	if format == db.BackupSQL {
		out.contentType = "application/sql"
	}
	var body io.Writer = out
	var zw *gzip.Writer
	if p.compress {
		zw, _ = gzip.NewWriterLevel(out, gzip.BestSpeed)
		body = zw
	}
	servedBy, done, err := s.viaLeader(w, r, p,
		func() error {
			if !p.noleader && !s.store.IsLeader() {
				return store.ErrNotLeader
			}
			return s.store.Backup(ctx, body, db.BackupOptions{Format: format, Vacuum: p.vacuum, Tables: tables})
		},
		func() error {
			out.servedBy = s.servedByLeader() // before the first byte goes out with the headers
			rc, err := s.store.LeaderBackup(ctx, &command.BackupRequest{Format: p.format, Vacuum: p.vacuum, Tables: tables})
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(body, rc)
			return err
		})
	if done {
		return
	}
	out.servedBy = servedBy
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err != nil {
		out.fail(err)
		return
	}
	out.finish()
	lastBackup.Store(time.Now())
}

// responseStream writes a streamed response: headers go out with the first byte. A failure before that is
// an HTTP error; after it, the connection is cut, so that the client never takes a truncated backup for a
// whole one.
type responseStream struct {
	w           http.ResponseWriter
	contentType string
	servedBy    string
	started     bool
}

func (o *responseStream) start() {
	if !o.started {
		o.started = true
		o.w.Header().Set("Content-Type", o.contentType)
		o.w.Header().Set("X-Rqlite-Served-By", o.servedBy)
		o.w.WriteHeader(http.StatusOK)
	}
}

func (o *responseStream) Write(b []byte) (int, error) {
	o.start()
	return o.w.Write(b)
}

func (o *responseStream) finish() { o.start() }

func (o *responseStream) fail(err error) {
	if o.started {
		panic(http.ErrAbortHandler)
	}
	if errors.Is(err, db.ErrInvalidBackupFormat) {
		http.Error(o.w, err.Error(), http.StatusBadRequest)
		return
	}
	failed(o.w, err, "backup", http.StatusInternalServerError)
}
