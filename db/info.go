package db

import (
	"context"
	"database/sql/driver"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Info is what /status shows of SQLite itself (rqlite's store.sqlite3 keys that have a meaning here).
type Info struct {
	Version        string
	CompileOptions []string
	// PragmasRW are the writer's settings (fixed when it opens); PragmasRO a read connection's, as read now.
	PragmasRW, PragmasRO map[string]string
	RWDSN, RODSN         string
	MaxReaders, InUse    int
	LastModified         time.Time
}

// pragmasShown are the settings /status reports.
var pragmasShown = []string{"journal_mode", "synchronous", "foreign_keys", "busy_timeout", "cache_size", "page_size",
	"wal_autocheckpoint", "max_page_count", "query_only"}

var compileOptions = sync.OnceValue(func() []string {
	conn, err := openConn(":memory:")
	if err != nil {
		return nil
	}
	defer conn.Close()
	var out []string
	for _, v := range queryStrings(conn, "PRAGMA compile_options") {
		out = append(out, v)
	}
	return out
})

func queryStrings(conn *sqlite3.SQLiteConn, sql string) []string {
	rows, err := conn.QueryContext(context.Background(), sql, nil)
	if err != nil {
		return nil
	}
	defer rows.Close()
	var out []string
	dest := make([]driver.Value, len(rows.Columns()))
	for rows.Next(dest) == nil {
		switch v := dest[0].(type) {
		case string:
			out = append(out, v)
		case []byte:
			out = append(out, string(v))
		case int64:
			out = append(out, strconv.FormatInt(v, 10))
		default:
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

// Info reads SQLite's version, options and settings. The read connection it uses is one of the pool's;
// the writer's settings are those it was opened with (reading them would wait behind a long write).
func (d *DB) Info(ctx context.Context) Info {
	sqlv, _, _ := sqlite3.Version()
	info := Info{Version: sqlv, CompileOptions: compileOptions(), MaxReaders: cap(d.readers.sem), InUse: d.readers.inUse(),
		RODSN: readerDSN(d.path, d.opts.ForeignKeys),
		PragmasRW: map[string]string{"journal_mode": "wal", "synchronous": "1", "busy_timeout": "5000",
			"foreign_keys": boolPragma(d.opts.ForeignKeys), "query_only": "0"},
		PragmasRO: map[string]string{}}
	if dsn := d.rwDSN.Load(); dsn != nil {
		info.RWDSN = *dsn
	}
	if fi, err := os.Stat(d.path); err == nil {
		info.LastModified = fi.ModTime()
	}
	if fi, err := os.Stat(d.path + "-wal"); err == nil && fi.ModTime().After(info.LastModified) {
		info.LastModified = fi.ModTime()
	}
	ctx, done := d.startRead(ctx)
	defer done()
	r, err := d.readers.get(ctx)
	if err != nil {
		return info
	}
	defer d.readers.put(r)
	for _, p := range pragmasShown {
		if v := queryStrings(r.conn, "PRAGMA "+p); len(v) > 0 {
			info.PragmasRO[p] = v[0]
		}
	}
	return info
}

func boolPragma(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
