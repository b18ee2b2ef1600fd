package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// newLogger logs at level and above to w, as text or JSON lines (-log-format).
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&uniqueKeys{next: h})
}

// uniqueKeys passes records on with each key at most once per line, as JSON readers expect: slog itself
// writes a key twice when a logger carries it (With) and a message gives it again. A repeated key is
// renamed key_2, key_3, ... rather than dropped. raftlite's lines use no groups.
type uniqueKeys struct {
	next slog.Handler
	keys map[string]int // the keys With gave, and how often
}

func (u *uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool { return u.next.Enabled(ctx, l) }

func (u *uniqueKeys) WithAttrs(attrs []slog.Attr) slog.Handler {
	keys := make(map[string]int, len(u.keys)+len(attrs))
	for k, n := range u.keys {
		keys[k] = n
	}
	attrs = renameRepeats(keys, attrs)
	return &uniqueKeys{next: u.next.WithAttrs(attrs), keys: keys}
}

func (u *uniqueKeys) WithGroup(name string) slog.Handler {
	return &uniqueKeys{next: u.next.WithGroup(name)}
}

func (u *uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	seen := map[string]int{slog.TimeKey: 1, slog.LevelKey: 1, slog.MessageKey: 1, slog.SourceKey: 1}
	for k, n := range u.keys {
		seen[k] = n
	}
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a); return true })
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(renameRepeats(seen, attrs)...)
	return u.next.Handle(ctx, out)
}

// renameRepeats counts attrs' keys into seen, renaming those already there.
func renameRepeats(seen map[string]int, attrs []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		if a.Key == "" && a.Value.Kind() == slog.KindGroup {
			// An inlined group: its attributes are top-level keys of the line.
			out = append(out, renameRepeats(seen, a.Value.Group())...)
			continue
		}
		seen[a.Key]++
		if n := seen[a.Key]; n > 1 {
			a.Key = fmt.Sprintf("%s_%d", a.Key, n)
		}
		out = append(out, a)
	}
	return out
}
