package db

import (
	"database/sql/driver"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/raftlite/raftlite/sqlscan"
)

// Capture configures change data capture (Options.Capture). While the writer applies committed entries,
// SQLite's pre-update hook records every changed row of the main database; the changes of each entry
// become one group, in rqlite's CDC JSON, stored in the database's own queue table (changeTable) in the
// same transaction as the changes. So a group is durable exactly when its changes are, nothing is captured
// twice, and log compaction, which waits for a durable database, can never lose one.
type Capture struct {
	// RowIDsOnly leaves the row images out.
	RowIDsOnly bool
	// Filter, if set, keeps only the changes of the tables it accepts.
	Filter func(table string) bool
	// Notify, if set, is told how many groups a batch queued, once it committed.
	Notify func(groups int)
}

// changeTable is the queue of captured groups; changeStateTable records how far it was pruned.
const (
	changeTable      = "_raftlite_cdc"
	changeStateTable = "_raftlite_cdc_state"
)

// The pre-update hook's operation codes (SQLITE_INSERT, SQLITE_DELETE, SQLITE_UPDATE).
const (
	opInsert = 18
	opDelete = 9
	opUpdate = 23
)

// Storage classes, as the hook records them (0: a value SQLite could not hand over).
const (
	classUnreadable = 0
	classInteger    = 1
	classFloat      = 2
	classText       = 3
	classBlob       = 4
	classNull       = 5
)

type rowEvent struct {
	op             int
	table          string
	oldKey, newKey int64
	before, after  []value
	// meta is the table as it was when the statement ran (a later statement of the entry may alter it).
	meta *tableMeta
}

type value struct {
	class byte
	i     int64
	f     float64
	b     []byte
}

// tableMeta describes a table's columns as SELECT * has them.
type tableMeta struct {
	columns      []column
	withoutRowID bool
	err          string // why the table's columns could not be read
	layouts      map[int]*layout
}

type column struct {
	name    string
	virtual bool // a VIRTUAL generated column: not stored in the row, so not in the hook's images
	hidden  bool // a hidden column of a virtual table: not in SELECT *
}

// capturer is the writer's side of capture: the hook's buffer, the current entry's events, and what it
// knows of the tables.
type capturer struct {
	cfg    Capture
	hook   *hookBuffer
	events []rowEvent
	// userTxMark is len(events) when the request's explicit transaction began.
	userTxMark int
	meta       map[string]*tableMeta
	// groups are the batch's groups, written to the queue just before it commits (flushGroups) through
	// the prepared INSERTs of each row count.
	groups  []ChangeGroup
	inserts map[int]driver.Stmt
	// queued is the number of groups in the queue, as of the last commit; pending is what the batch being
	// applied adds to it.
	queued, pending int64
	// delivered is the delivery the queue's state records (PruneChanges skips a prune that changes nothing).
	delivered int64
}

// captureMark is where the next statement's events start (0 on a reader or without capture).
func (w *writer) captureMark() int {
	if w == nil {
		return 0
	}
	return w.capture.mark()
}

// captured takes in the events of the statement of the given kind just run on the writer (see collect);
// after a statement that may have changed a table's columns, the columns are read afresh.
func (w *writer) captured(kind sqlscan.Kind, since int, failed bool) error {
	if w == nil || w.capture == nil {
		return nil
	}
	switch kind {
	case sqlscan.Insert, sqlscan.Update, sqlscan.Delete, sqlscan.Replace, sqlscan.Select, sqlscan.Values:
	default:
		w.capture.forgetSchema()
	}
	return w.capture.collect(w, since, failed)
}

// mark is a point in the current entry's events that a rollback may return to.
func (c *capturer) mark() int {
	if c == nil {
		return 0
	}
	return len(c.events)
}

// collect moves what the hook recorded into the entry's events. A statement that failed and changed
// nothing was rolled back by SQLite (its own statement journal): its events go too. (A failed statement
// that keeps its changes, under an ON CONFLICT FAIL clause, reports them in changes().)
func (c *capturer) collect(w *writer, since int, failed bool) error {
	if c == nil {
		return nil
	}
	if c.hook.pending() {
		buf, err := c.hook.take()
		if err != nil {
			return err
		}
		if err := c.decode(buf); err != nil {
			return fmt.Errorf("change capture: %w", err)
		}
	}
	if failed && w.counters.changes() == 0 && len(c.events) > since {
		c.events = c.events[:since]
	}
	return c.learnTables(w)
}

// rollbackTo forgets the events after mark: the statements that made them were rolled back.
func (c *capturer) rollbackTo(mark int) {
	if c != nil && mark < len(c.events) {
		c.events = c.events[:mark]
	}
}

// reset starts a new entry.
func (c *capturer) reset() {
	if c == nil {
		return
	}
	c.hook.take()
	c.events = c.events[:0]
	c.userTxMark = 0
}

// forgetSchema drops what is known of the tables, after a statement that may have changed them.
func (c *capturer) forgetSchema() {
	if c != nil {
		clear(c.meta)
	}
}

func (c *capturer) decode(buf []byte) error {
	r := &byteReader{b: buf}
	for len(r.b) > 0 {
		ev := rowEvent{op: int(r.u8())}
		ev.table = string(r.bytes())
		ev.oldKey, ev.newKey = int64(r.u64()), int64(r.u64())
		ev.before, ev.after = r.image(), r.image()
		if r.err != nil {
			return r.err
		}
		c.events = append(c.events, ev)
	}
	return nil
}

// learnTables reads the columns of the tables the entry's events name that it does not know yet. It runs
// after each statement, while those tables still exist (a later statement of the entry may drop one).
func (c *capturer) learnTables(w *writer) error {
	for i := len(c.events) - 1; i >= 0 && c.events[i].meta == nil; i-- {
		ev := &c.events[i]
		m, ok := c.meta[ev.table]
		if !ok {
			var err error
			if m, err = w.tableMeta(ev.table); err != nil {
				if isEnvironmental(err) {
					return err
				}
				m = &tableMeta{err: fmt.Sprintf("failed to get column names for table %s: %v", ev.table, err)}
			}
			c.meta[ev.table] = m
		}
		ev.meta = m
	}
	return nil
}

// tableMeta reads the columns of table t (on the writer, which sees the entry's own schema changes).
func (w *writer) tableMeta(t string) (*tableMeta, error) {
	w.internal = true
	defer func() { w.internal = false }()
	m := &tableMeta{}
	rows, err := w.conn.Query("SELECT name, hidden FROM pragma_table_xinfo(?) ORDER BY cid", []driver.Value{t})
	if err != nil {
		return nil, err
	}
	vals := make([]driver.Value, 2)
	for {
		if err := rows.Next(vals); err != nil {
			rows.Close()
			if err == io.EOF {
				break
			}
			return nil, err
		}
		name, _ := vals[0].(string)
		if b, ok := vals[0].([]byte); ok {
			name = string(b)
		}
		hidden, _ := vals[1].(int64)
		m.columns = append(m.columns, column{name: name, hidden: hidden == 1, virtual: hidden == 2})
	}
	if len(m.columns) == 0 {
		return nil, fmt.Errorf("no such table: %s", t)
	}
	rows, err = w.conn.Query("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", []driver.Value{t})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	vals = vals[:1]
	if rows.Next(vals) == nil {
		wr, _ := vals[0].(int64)
		m.withoutRowID = wr == 1
	}
	return m, nil
}

// group encodes the entry's events as one payload entry of rqlite's CDC JSON, or returns nil if the
// filter left none.
func (c *capturer) group(index uint64, tsMs int64) []byte {
	var out []byte
	n := 0
	for i := range c.events {
		ev := &c.events[i]
		if c.cfg.Filter != nil && !c.cfg.Filter(ev.table) {
			continue
		}
		if n == 0 {
			out = append(out, `{"index":`...)
			out = strconv.AppendUint(out, index, 10)
			if tsMs != 0 {
				out = append(out, `,"commit_timestamp":`...)
				out = strconv.AppendInt(out, tsMs, 10)
			}
			out = append(out, `,"events":[`...)
		} else {
			out = append(out, ',')
		}
		n++
		out = c.appendEvent(out, ev)
	}
	if n == 0 {
		return nil
	}
	return append(out, "]}"...)
}

func (c *capturer) appendEvent(out []byte, ev *rowEvent) []byte {
	op := "UNKNOWN"
	switch ev.op {
	case opInsert:
		op = "INSERT"
	case opUpdate:
		op = "UPDATE"
	case opDelete:
		op = "DELETE"
	}
	out = append(out, `{"op":"`...)
	out = append(out, op...)
	out = append(out, `","table":`...)
	out = appendJSONString(out, ev.table)
	m := ev.meta
	if m == nil || !m.withoutRowID {
		if ev.op != opDelete && ev.newKey != 0 {
			out = append(out, `,"new_row_id":`...)
			out = strconv.AppendInt(out, ev.newKey, 10)
		}
		if ev.op != opInsert && ev.oldKey != 0 {
			out = append(out, `,"old_row_id":`...)
			out = strconv.AppendInt(out, ev.oldKey, 10)
		}
	}
	var problem string
	switch {
	case ev.op != opInsert && ev.op != opUpdate && ev.op != opDelete:
		problem = fmt.Sprintf("unknown preupdate hook operation %d", ev.op)
	case c.cfg.RowIDsOnly:
	case m == nil || m.err != "":
		problem = "failed to get column names for table " + ev.table
		if m != nil {
			problem = m.err
		}
	default:
		// Images are written in place; on an error the event goes back to where it was and carries the
		// error instead.
		mark := len(out)
		var err error
		if ev.op != opInsert {
			out = append(out, `,"before":`...)
			if out, err = m.appendImage(out, ev.before); err != nil {
				problem = "old row: " + err.Error()
			}
		}
		if ev.op != opDelete && problem == "" {
			out = append(out, `,"after":`...)
			if out, err = m.appendImage(out, ev.after); err != nil {
				problem = "new row: " + err.Error()
			}
		}
		if problem != "" {
			out = out[:mark]
		}
	}
	if problem != "" {
		out = append(out, `,"error":`...)
		out = appendJSONString(out, problem)
	}
	return append(out, '}')
}

// layout is how a row image of n values maps to the JSON object: for each key, in sorted order, the
// key already encoded ("name":) and the index of its value.
type layout struct {
	keys [][]byte
	at   []int
}

// layoutFor works out (once per table and image size) which values go under which keys. The hook's
// images hold either every column or only the stored ones (not VIRTUAL generated columns), depending on
// SQLite's version; hidden columns of virtual tables are not in SELECT *, so not in the image either.
func (m *tableMeta) layoutFor(n int) (*layout, error) {
	if l, ok := m.layouts[n]; ok {
		return l, nil
	}
	type cell struct {
		name string
		at   int
	}
	var cells []cell
	stored := 0
	for _, col := range m.columns {
		if !col.virtual {
			stored++
		}
	}
	switch n {
	case stored:
		i := 0
		for _, col := range m.columns {
			if col.virtual {
				continue
			}
			if !col.hidden {
				cells = append(cells, cell{col.name, i})
			}
			i++
		}
	case len(m.columns):
		for i, col := range m.columns {
			if !col.hidden && !col.virtual {
				cells = append(cells, cell{col.name, i})
			}
		}
	default:
		return nil, fmt.Errorf("%d values for the %d columns of the table", n, len(m.columns))
	}
	slices.SortFunc(cells, func(a, b cell) int { return strings.Compare(a.name, b.name) })
	l := &layout{}
	for _, c := range cells {
		l.keys = append(l.keys, append(appendJSONString(nil, c.name), ':'))
		l.at = append(l.at, c.at)
	}
	if m.layouts == nil {
		m.layouts = map[int]*layout{}
	}
	m.layouts[n] = l
	return l, nil
}

// appendImage encodes a row as a JSON object of its columns, keys sorted. A value JSON cannot hold (an
// infinite or NaN real) is null.
func (m *tableMeta) appendImage(out []byte, vals []value) ([]byte, error) {
	l, err := m.layoutFor(len(vals))
	if err != nil {
		return out, err
	}
	out = append(out, '{')
	for i, key := range l.keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, key...)
		out = appendValue(out, &vals[l.at[i]])
	}
	return append(out, '}'), nil
}

func appendValue(out []byte, v *value) []byte {
	switch v.class {
	case classInteger:
		return strconv.AppendInt(out, v.i, 10)
	case classFloat:
		return appendFloat(out, v.f)
	case classText:
		return appendJSONString(out, v.b)
	case classBlob:
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, v.b)
		return append(out, '"')
	}
	return append(out, "null"...)
}

// appendFloat writes f as encoding/json does (the shortest form that reads back the same; exponent
// notation below 1e-6 and from 1e21); an infinite or NaN real, which JSON cannot hold, is null.
func appendFloat(out []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(out, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	n := len(out)
	out = strconv.AppendFloat(out, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 becomes 1e-7, as encoding/json writes it.
		if e := len(out) - n; e >= 4 && out[len(out)-4] == 'e' && out[len(out)-3] == '-' && out[len(out)-2] == '0' {
			out[len(out)-2] = out[len(out)-1]
			out = out[:len(out)-1]
		}
	}
	return out
}

// appendJSONString encodes s as encoding/json does: HTML characters escaped (\u003c, \u003e, \u0026),
// U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func appendJSONString[T string | []byte](out []byte, s T) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			out = append(out, s[start:i]...)
			switch c {
			case '"', '\\':
				out = append(out, '\\', c)
			case '\n':
				out = append(out, '\\', 'n')
			case '\r':
				out = append(out, '\\', 'r')
			case '\t':
				out = append(out, '\\', 't')
			case '\b':
				out = append(out, '\\', 'b')
			case '\f':
				out = append(out, '\\', 'f')
			default:
				out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune([]byte(s[i:min(len(s), i+utf8.UTFMax)]))
		if r == utf8.RuneError && size == 1 {
			out = append(out, s[start:i]...)
			out = append(out, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			out = append(out, s[start:i]...)
			out = append(out, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// byteReader decodes the hook's records (capture_hook.go writes them): op (1 byte), table (length, bytes),
// old and new rowid (8 bytes each, little-endian), then the before and after images, each a count and
// that many values: class (1 byte) and, for integers and reals, 8 bytes, for text and blobs a length and
// the bytes.
type byteReader struct {
	b   []byte
	err error
}

var errShortRecord = errors.New("truncated record from the pre-update hook")

func (r *byteReader) need(n int) bool {
	if r.err != nil || len(r.b) < n {
		if r.err == nil {
			r.err = errShortRecord
		}
		r.b = nil
		return false
	}
	return true
}

func (r *byteReader) u8() byte {
	if !r.need(1) {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *byteReader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *byteReader) bytes() []byte {
	n := r.u64()
	if n > uint64(len(r.b)) || !r.need(int(n)) {
		r.err = errShortRecord
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *byteReader) image() []value {
	n := r.u64()
	if n > uint64(len(r.b)) {
		r.err = errShortRecord
		return nil
	}
	if n == 0 {
		return nil
	}
	vals := make([]value, n)
	for i := range vals {
		v := &vals[i]
		v.class = r.u8()
		switch v.class {
		case classInteger:
			v.i = int64(r.u64())
		case classFloat:
			v.f = math.Float64frombits(r.u64())
		case classText, classBlob:
			v.b = r.bytes()
		}
	}
	return vals
}
