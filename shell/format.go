package shell

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Output modes.
const (
	modeColumn = "column"
	modeCSV    = "csv"
	modeJSON   = "json"
	modeLine   = "line"
)

var modes = []string{modeColumn, modeCSV, modeJSON, modeLine}

// nullText is how tables and lines show NULL: distinct from the text 'NULL' only by the brackets, and
// never mistaken for an empty string.
const nullText = "<null>"

// maxCellWidth bounds a column in a table; longer values are cut with "…" (.mode line shows them whole).
const maxCellWidth = 64

// cellText renders a value for a table or a line: control characters escaped so that a value cannot break
// the layout.
func cellText(v any) string {
	s, null := plainText(v)
	if null {
		return nullText
	}
	return escapeControl(s)
}

// plainText renders a value as its text, reporting NULL separately.
func plainText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, false
	case json.Number:
		return x.String(), false
	case bool:
		if x {
			return "true", false
		}
		return "false", false
	default:
		b, _ := json.Marshal(x)
		return string(b), false
	}
}

func escapeControl(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// printRows writes a query's rows in the given mode.
func printRows(w io.Writer, mode string, headers bool, r *result) error {
	switch mode {
	case modeCSV:
		return printCSV(w, headers, r)
	case modeJSON:
		return printJSON(w, r)
	case modeLine:
		printLines(w, r)
		return nil
	default:
		printTable(w, headers, r)
		return nil
	}
}

// printTable draws an aligned table with borders:
//
//	+----+-------+
//	| id | name  |
//	+----+-------+
//	| 1  | fiona |
//	+----+-------+
func printTable(w io.Writer, headers bool, r *result) {
	cells := make([][]string, 0, len(r.Values)+1)
	if headers {
		head := make([]string, len(r.Columns))
		for i, c := range r.Columns {
			head[i] = truncate(escapeControl(c), maxCellWidth)
		}
		cells = append(cells, head)
	}
	for _, row := range r.Values {
		line := make([]string, len(r.Columns))
		for i := range line {
			if i < len(row) {
				line[i] = truncate(cellText(row[i]), maxCellWidth)
			}
		}
		cells = append(cells, line)
	}
	widths := make([]int, len(r.Columns))
	for _, line := range cells {
		for i, c := range line {
			widths[i] = max(widths[i], displayWidth(c))
		}
	}
	var b strings.Builder
	rule := func() {
		b.WriteByte('+')
		for _, n := range widths {
			b.WriteString(strings.Repeat("-", n+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	rule()
	for i, line := range cells {
		b.WriteByte('|')
		for j, c := range line {
			b.WriteByte(' ')
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[j]-displayWidth(c)+1))
			b.WriteByte('|')
		}
		b.WriteByte('\n')
		if i == 0 && headers {
			rule()
		}
	}
	if len(r.Values) > 0 || !headers {
		rule()
	}
	io.WriteString(w, b.String())
}

// printCSV follows RFC 4180; NULL is an empty field, as in the sqlite3 shell.
func printCSV(w io.Writer, headers bool, r *result) error {
	cw := csv.NewWriter(w)
	if headers {
		cw.Write(r.Columns)
	}
	for _, row := range r.Values {
		rec := make([]string, len(r.Columns))
		for i := range rec {
			if i < len(row) {
				rec[i], _ = plainText(row[i])
			}
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// printJSON writes an indented array of objects, one per row, with the columns in order.
func printJSON(w io.Writer, r *result) error {
	var b strings.Builder
	b.WriteString("[")
	for n, row := range r.Values {
		if n > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n  {")
		for i, col := range r.Columns {
			if i > 0 {
				b.WriteString(",")
			}
			k, _ := json.Marshal(col)
			var v any
			if i < len(row) {
				v = row[i]
			}
			val, err := json.Marshal(v)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "\n    %s: %s", k, val)
		}
		b.WriteString("\n  }")
	}
	if len(r.Values) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("]\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// printLines writes "column = value" per line, names right-aligned, a blank line between rows.
func printLines(w io.Writer, r *result) {
	width := 0
	for _, c := range r.Columns {
		width = max(width, displayWidth(c))
	}
	var b strings.Builder
	for n, row := range r.Values {
		if n > 0 {
			b.WriteByte('\n')
		}
		for i, col := range r.Columns {
			var v any
			if i < len(row) {
				v = row[i]
			}
			fmt.Fprintf(&b, "%s%s = %s\n", strings.Repeat(" ", width-displayWidth(col)), col, cellText(v))
		}
	}
	io.WriteString(w, b.String())
}
