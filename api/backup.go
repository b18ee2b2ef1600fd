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

// handleBackup serves GET /db/backup (reference §1.5): fmt=binary (default), delete or sql, optionally
// gzipped (compress), sql limited to some tables, binary rebuilt compactly (vacuum). The leader's data is
// served (a follower streams it from the leader) unless noleader asks for this node's own.
func (s *Service) handleBackup(w http.ResponseWriter, r *http.Request, p *params) {
	if !allow(w, r, http.MethodGet) {
		return
	}
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
	var err error
	if p.noleader || s.store.IsLeader() {
		err = s.store.Backup(ctx, body, db.BackupOptions{Format: format, Vacuum: p.vacuum, Tables: tables})
	} else if p.redirect {
		s.redirect(w, r)
		return
	} else {
		var rc io.ReadCloser
		rc, err = s.store.LeaderBackup(ctx, &command.BackupRequest{Format: p.format, Vacuum: p.vacuum, Tables: tables})
		if err == nil {
			out.servedBy = s.servedByLeader()
			_, err = io.Copy(body, rc)
			rc.Close()
		}
	}
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
	switch {
	case deniedByLeader(o.w, err):
	case errors.Is(err, store.ErrNoLeader):
		http.Error(o.w, "leader not found", http.StatusServiceUnavailable)
	case errors.Is(err, db.ErrInvalidBackupFormat):
		http.Error(o.w, err.Error(), http.StatusBadRequest)
	default:
		http.Error(o.w, "backup: "+err.Error(), http.StatusInternalServerError)
	}
}
