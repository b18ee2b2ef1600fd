package db

import (
	"time"
	"unicode/utf8"
)

// Applying is the statement the writer is running for a committed entry: every later write waits for it.
type Applying struct {
	Index uint64    // the entry's log index
	SQL   string    // the statement, cut to MaxLoggedSQL bytes
	Since time.Time // when it started on this node
}

// MaxLoggedSQL bounds the text of a statement kept for the log and /status: a statement can be megabytes.
const MaxLoggedSQL = 1024

// Applying reports the statement being applied now, if any.
func (d *DB) Applying() (Applying, bool) {
	a := d.applying.Load()
	if a == nil {
		return Applying{}, false
	}
	return *a, true
}

// startApplying records that the statement sql of entry index starts now.
func (d *DB) startApplying(index uint64, sql string) *Applying {
	a := &Applying{Index: index, SQL: ShortSQL(sql), Since: time.Now()}
	d.applying.Store(a)
	return a
}

// doneApplying clears a and, if it took at least Options.SlowApply, logs it: an operator whose writes all
// stalled finds the statement that held them up.
func (d *DB) doneApplying(a *Applying) {
	d.applying.CompareAndSwap(a, nil)
	took := time.Since(a.Since)
	if d.opts.SlowApply > 0 && took >= d.opts.SlowApply {
		d.log.Warn("slow write: applying one statement of a committed entry held up every write behind it",
			"index", a.Index, "took", took.Round(time.Millisecond), "statement", a.SQL)
	}
}

// ShortSQL cuts sql to MaxLoggedSQL bytes (on a character boundary), marking the cut.
func ShortSQL(sql string) string {
	if len(sql) <= MaxLoggedSQL {
		return sql
	}
	cut := MaxLoggedSQL
	for cut > 0 && !utf8.RuneStart(sql[cut]) {
		cut--
	}
	return sql[:cut] + "…"
}
