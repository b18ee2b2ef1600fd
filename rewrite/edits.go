package rewrite

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raftlite/raftlite/sqlscan"
)

// literal is what an edit puts in place of its span.
type literal uint8

const (
	litNone      literal = iota
	litInt               // random(): a decimal int64, parenthesized when negative
	litBlob              // randomblob(N): x'HEX' of n bytes
	litNow               // 'now': 'YYYY-MM-DD HH:MM:SS.SSS'
	litNowArg            // strftime's missing time-value: , 'YYYY-MM-DD HH:MM:SS.SSS'
	litTimestamp         // CURRENT_TIMESTAMP: 'YYYY-MM-DD HH:MM:SS'
	litDate              // CURRENT_DATE: 'YYYY-MM-DD'
	litTime              // CURRENT_TIME: 'HH:MM:SS'
)

// edit replaces sql[start:end] (an insertion when start == end) with a literal. The text is produced only
// when applying, so nothing is drawn from the PRNG or formatted unless the result is used.
type edit struct {
	start, end int
	lit        literal
	n          int // litBlob: number of bytes
}

// apply returns sql with the edits made. Random values are drawn in source order.
func apply(sql string, edits []edit, now time.Time, rnd *rand.Rand) string {
	byPosition := func(a, b edit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return a.end - b.end
	}
	if !slices.IsSortedFunc(edits, byPosition) {
		// strftime's added argument is found before replacements inside the argument it follows.
		slices.SortStableFunc(edits, byPosition)
	}
	var b strings.Builder
	b.Grow(len(sql) + 32*len(edits))
	var scratch []byte
	pos := 0
	for _, e := range edits {
		if e.start < pos {
			continue // overlapping edits cannot arise; never emit garbage if one did
		}
		scratch = render(scratch[:0], e, now, rnd)
		b.WriteString(sql[pos:e.start])
		// Keep the literal from fusing with its neighbours into a different token: "?1random()" must not
		// become the parameter ?1123, nor "random()x" the illegal token 123x, nor 'a'CURRENT_DATE one string.
		if e.start > 0 && fuses(sql[e.start-1], scratch[0]) {
			b.WriteByte(' ')
		}
		b.Write(scratch)
		if e.end < len(sql) && fuses(scratch[len(scratch)-1], sql[e.end]) {
			b.WriteByte(' ')
		}
		pos = e.end
	}
	b.WriteString(sql[pos:])
	return b.String()
}

// fuses reports whether byte a followed directly by byte b could be read as parts of one token.
func fuses(a, b byte) bool {
	switch {
	case a == '\'' && b == '\'':
		return true
	case sqlscan.IsIdentChar(b):
		return sqlscan.IsIdentChar(a) || a == '.' || a == '?'
	case b == '.':
		return sqlscan.IsIdentChar(a)
	}
	return false
}

const (
	layoutNow       = "2006-01-02 15:04:05.000" // what SQLite's own 'now' holds: milliseconds, truncated
	layoutTimestamp = "2006-01-02 15:04:05"
	layoutDate      = "2006-01-02"
	layoutTime      = "15:04:05"
)

func render(dst []byte, e edit, now time.Time, rnd *rand.Rand) []byte {
	switch e.lit {
	case litInt:
		// The full signed range, like SQLite's random(); rnd.Int64() would never be negative.
		v := int64(rnd.Uint64())
		if v < 0 {
			// Parenthesized so that "x -random()" cannot become the comment "x --42".
			dst = append(dst, '(')
			dst = strconv.AppendInt(dst, v, 10)
			return append(dst, ')')
		}
		return strconv.AppendInt(dst, v, 10)
	case litBlob:
		dst = append(dst, "x'"...)
		var word uint64
		for i := 0; i < e.n; i++ {
			if i%8 == 0 {
				word = rnd.Uint64()
			}
			dst = append(dst, hexDigits[word>>4&0xF], hexDigits[word&0xF])
			word >>= 8
		}
		return append(dst, '\'')
	case litNowArg:
		dst = append(dst, ", "...)
		return quoted(dst, now, layoutNow)
	case litTimestamp:
		return quoted(dst, now, layoutTimestamp)
	case litDate:
		return quoted(dst, now, layoutDate)
	case litTime:
		return quoted(dst, now, layoutTime)
	default: // litNow
		return quoted(dst, now, layoutNow)
	}
}

const hexDigits = "0123456789ABCDEF"

// quoted appends now in layout as an SQL string literal. Go's fractional seconds truncate, like SQLite.
func quoted(dst []byte, now time.Time, layout string) []byte {
	dst = append(dst, '\'')
	dst = now.AppendFormat(dst, layout)
	return append(dst, '\'')
}
