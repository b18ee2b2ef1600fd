package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/raftlite/raftlite/db"
)

// encoder appends rqlite's JSON to a buffer, byte-compatible with what Go's
// encoding/json produces for rqlite's structs: the same field order, omissions, float formatting, and
// HTML-safe string escaping. It exists because reflection-based encoding dominates the cost of small
// requests.
type encoder struct {
	buf         []byte
	associative bool
	blobArray   bool
	timings     bool
}

// response encodes {"results":[...],"error":...,"time":...,"sequence_number":...,"raft_index":...}.
func (e *encoder) response(results []db.Result, errMsg string, elapsed float64, seq int64, raftIndex uint64) {
	e.buf = append(e.buf, `{"results":[`...)
	for i, r := range results {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.result(r)
	}
	e.buf = append(e.buf, ']')
	if errMsg != "" {
		e.buf = append(e.buf, `,"error":`...)
		e.str(errMsg)
	}
	if e.timings && elapsed != 0 {
		e.buf = append(e.buf, `,"time":`...)
		e.float(elapsed)
	}
	if seq != 0 {
		e.buf = append(e.buf, `,"sequence_number":`...)
		e.buf = strconv.AppendInt(e.buf, seq, 10)
	}
	if raftIndex != 0 {
		e.buf = append(e.buf, `,"raft_index":`...)
		e.buf = strconv.AppendUint(e.buf, raftIndex, 10)
	}
	e.buf = append(e.buf, '}')
}

func (e *encoder) result(r db.Result) {
	switch {
	case r.Exec != nil:
		e.exec(r.Exec)
	case r.Rows != nil:
		e.rows(r.Rows)
	default:
		e.buf = append(e.buf, `{"error":`...)
		e.str(r.Error)
		e.buf = append(e.buf, '}')
	}
}

func (e *encoder) exec(x *db.ExecResult) {
	e.buf = append(e.buf, '{')
	n := len(e.buf)
	if x.LastInsertID != 0 {
		e.buf = append(e.buf, `"last_insert_id":`...)
		e.buf = strconv.AppendInt(e.buf, x.LastInsertID, 10)
	}
	if x.RowsAffected != 0 {
		e.sep(n)
		e.buf = append(e.buf, `"rows_affected":`...)
		e.buf = strconv.AppendInt(e.buf, x.RowsAffected, 10)
	}
	e.errorAndTime(n, x.Error, x.Time)
	if e.associative && x.Error == "" {
		e.sep(n)
		e.buf = append(e.buf, `"rows":null`...)
	}
	e.buf = append(e.buf, '}')
}

func (e *encoder) rows(x *db.Rows) {
	e.buf = append(e.buf, '{')
	n := len(e.buf)
	if x.Error != "" {
		e.errorAndTime(n, x.Error, x.Time)
		e.buf = append(e.buf, '}')
		return
	}
	if e.associative {
		e.assocRows(x, n)
		return
	}
	if len(x.Columns) > 0 {
		e.buf = append(e.buf, `"columns":`...)
		e.strings(x.Columns)
	}
	if len(x.Types) > 0 {
		e.sep(n)
		e.buf = append(e.buf, `"types":`...)
		e.strings(x.Types)
	}
	if len(x.Values) > 0 {
		e.sep(n)
		e.buf = append(e.buf, `"values":[`...)
		for i, row := range x.Values {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = append(e.buf, '[')
			for j, v := range row {
				if j > 0 {
					e.buf = append(e.buf, ',')
				}
				e.value(v)
			}
			e.buf = append(e.buf, ']')
		}
		e.buf = append(e.buf, ']')
	}
	e.errorAndTime(n, "", x.Time)
	e.buf = append(e.buf, '}')
}

// assocRows writes {"types":{col:type},"rows":[{col:value}],"time":t}. Objects list keys sorted, as Go's
// encoding of maps does; a repeated column name keeps its last value.
func (e *encoder) assocRows(x *db.Rows, n int) {
	order, last := sortedColumns(x.Columns)
	if len(x.Columns) > 0 {
		e.buf = append(e.buf, `"types":{`...)
		for i, c := range order {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.str(x.Columns[c])
			e.buf = append(e.buf, ':')
			typ := ""
			if c < len(x.Types) {
				typ = x.Types[last[c]]
			}
			e.str(typ)
		}
		e.buf = append(e.buf, '}')
	}
	e.sep(n)
	e.buf = append(e.buf, `"rows":[`...)
	for i, row := range x.Values {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = append(e.buf, '{')
		for j, c := range order {
			if j > 0 {
				e.buf = append(e.buf, ',')
			}
			e.str(x.Columns[c])
			e.buf = append(e.buf, ':')
			e.value(row[last[c]])
		}
		e.buf = append(e.buf, '}')
	}
	e.buf = append(e.buf, ']')
	e.errorAndTime(n, "", x.Time)
	e.buf = append(e.buf, '}')
}

// sortedColumns returns the indexes of the distinct column names in name order, and for each the index
// of its last occurrence.
func sortedColumns(cols []string) (order []int, last map[int]int) {
	lastByName := map[string]int{}
	for i, c := range cols {
		lastByName[c] = i
	}
	last = map[int]int{}
	for i, c := range cols {
		if lastByName[c] == i {
			order = append(order, i)
		}
		last[i] = lastByName[c]
	}
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && cols[order[j]] < cols[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	return order, last
}

// errorAndTime ends a statement's result: its error, or else its time (rqlite gives a failed statement no
// time).
func (e *encoder) errorAndTime(n int, msg string, t float64) {
	if msg != "" {
		e.sep(n)
		e.buf = append(e.buf, `"error":`...)
		e.str(msg)
		return
	}
	if e.timings && t != 0 {
		e.sep(n)
		e.buf = append(e.buf, `"time":`...)
		e.float(t)
	}
}

// sep writes a comma unless the object that started at n is still empty.
func (e *encoder) sep(n int) {
	if len(e.buf) > n {
		e.buf = append(e.buf, ',')
	}
}

func (e *encoder) value(v any) {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case float64:
		e.float(x)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		e.str(x)
	case []byte:
		if e.blobArray {
			e.buf = append(e.buf, '[')
			for i, b := range x {
				if i > 0 {
					e.buf = append(e.buf, ',')
				}
				e.buf = strconv.AppendUint(e.buf, uint64(b), 10)
			}
			e.buf = append(e.buf, ']')
			return
		}
		e.buf = append(e.buf, '"')
		e.buf = base64.StdEncoding.AppendEncode(e.buf, x)
		e.buf = append(e.buf, '"')
	default:
		b, _ := json.Marshal(x)
		e.buf = append(e.buf, b...)
	}
}

// float formats like encoding/json. JSON has no infinities; they are written as null.
func (e *encoder) float(f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		e.buf = append(e.buf, "null"...)
		return
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(e.buf)
	e.buf = strconv.AppendFloat(e.buf, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(e.buf) - start
		if n >= 4 && e.buf[len(e.buf)-4] == 'e' && e.buf[len(e.buf)-3] == '-' && e.buf[len(e.buf)-2] == '0' {
			e.buf[len(e.buf)-2] = e.buf[len(e.buf)-1]
			e.buf = e.buf[:len(e.buf)-1]
		}
	}
}

func (e *encoder) strings(ss []string) {
	e.buf = append(e.buf, '[')
	for i, s := range ss {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.str(s)
	}
	e.buf = append(e.buf, ']')
}

const hexDigits = "0123456789abcdef"

// str writes s as a JSON string with encoding/json's escaping: HTML-safe (<, >, & as \u003c ...), U+2028
// and U+2029 escaped, and invalid UTF-8 replaced by U+FFFD.
func (e *encoder) str(s string) {
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			e.buf = append(e.buf, s[start:i]...)
			switch b {
			case '\\', '"':
				e.buf = append(e.buf, '\\', b)
			case '\n':
				e.buf = append(e.buf, '\\', 'n')
			case '\r':
				e.buf = append(e.buf, '\\', 'r')
			case '\t':
				e.buf = append(e.buf, '\\', 't')
			case '\b':
				e.buf = append(e.buf, '\\', 'b')
			case '\f':
				e.buf = append(e.buf, '\\', 'f')
			default:
				e.buf = append(e.buf, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			e.buf = append(e.buf, s[start:i]...)
			e.buf = append(e.buf, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
}

// indent re-indents compact JSON the way rqlite's ?pretty does (four spaces).
func indent(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "    "); err != nil {
		return b
	}
	return out.Bytes()
}
