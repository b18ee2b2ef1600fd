package api

import (
	"net/http"
	"time"

	"github.com/raftlite/raftlite/store"
)

// Metrics receives a record of every request and serves /metrics; *metrics.Metrics implements it.
type Metrics interface {
	ObserveRequest(endpoint, method string, code int, level string, d time.Duration)
	Handler() http.Handler
}

// levelLabel is the consistency level a read was served at (as parseLevel reads it; parseParams refuses
// any value but the five, so a client cannot create series), and "" for everything else.
func levelLabel(rt *route, p *params) string {
	if p == nil || rt == nil || !rt.leveled {
		return ""
	}
	return levelNames[parseLevel(p.level)]
}

var levelNames = map[store.Level]string{store.LevelNone: "none", store.LevelWeak: "weak",
	store.LevelLinearizable: "linearizable", store.LevelStrong: "strong", store.LevelAuto: "auto"}

// methodLabel keeps the methods the API serves and folds anything else into "other": the server accepts
// any method name, and each would otherwise be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPut:
		return m
	}
	return "other"
}

// statusWriter remembers the status code written. Unwrap lets http.ResponseController reach the
// connection beneath (deadlines, flushing).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
