package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"strings"
)

// handleBackup serves GET /db/backup: the database as a SQLite file (fmt=binary, the default) or as SQL
// text (fmt=sql), optionally gzipped (compress). This node serves it; without noleader a follower passes
// the request to the leader with a redirect.
func (s *Service) handleBackup(w http.ResponseWriter, r *http.Request, p *params) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	if !p.noleader && !s.store.IsLeader() {
		s.redirect(w, r)
		return
	}
	var body bytes.Buffer
	var out io.Writer = &body
	var zw *gzip.Writer
	if p.compress {
		zw, _ = gzip.NewWriterLevel(&body, gzip.BestSpeed)
		out = zw
	}
	ctx, cancel := s.requestContext(r, p)
	defer cancel()
	contentType := "application/octet-stream"
	if p.format == "sql" {
		contentType = "application/sql"
		var tables []string
		for _, t := range strings.Split(p.tables, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tables = append(tables, t)
			}
		}
		if err := s.store.DB().Dump(ctx, out, tables); err != nil {
			http.Error(w, "backup: "+err.Error(), http.StatusInternalServerError)
			return
		}
	} else {
		f, err := os.CreateTemp("", "raftlite-backup-*.db")
		if err != nil {
			http.Error(w, "backup: "+err.Error(), http.StatusInternalServerError)
			return
		}
		path := f.Name()
		f.Close()
		defer os.Remove(path)
		if _, err := s.store.DB().Copy(ctx, path); err != nil {
			http.Error(w, "backup: "+err.Error(), http.StatusInternalServerError)
			return
		}
		f, err = os.Open(path)
		if err != nil {
			http.Error(w, "backup: "+err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		io.Copy(out, f)
	}
	if zw != nil {
		zw.Close()
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Rqlite-Served-By", s.servedByLocal())
	w.WriteHeader(http.StatusOK)
	w.Write(body.Bytes())
}
