package db

import (
	"fmt"
	"time"
)

// DefaultMaxResultBytes bounds the rows one read request may hold in memory (Options.MaxResultBytes).
const DefaultMaxResultBytes = 256 << 20

// applyResultBytes bounds the rows a request applied from the log may return (RETURNING, or a SELECT sent
// to /db/execute). It is a constant, not an option: every replica must cut a result at the same row,
// since the cut fails the statement and a failed statement ends an atomic request.
var applyResultBytes int64 = DefaultMaxResultBytes

// resultBudget is what is left of a request's allowance for result rows. A nil budget is unlimited.
type resultBudget struct {
	limit, left int64
}

func newResultBudget(limit int64) *resultBudget {
	if limit <= 0 {
		return nil
	}
	return &resultBudget{limit: limit, left: limit}
}

// take charges one row; false means the request's rows no longer fit.
func (b *resultBudget) take(row []any) bool {
	if b == nil {
		return true
	}
	b.left -= rowCost(row)
	return b.left >= 0
}

func (b *resultBudget) exceeded() string {
	return fmt.Sprintf("query result too large: more than %d MiB of rows; select fewer rows or columns (LIMIT)", b.limit>>20)
}

// rowCost approximates the memory a row takes once decoded: slice and interface headers plus contents.
// It depends only on the values, so every replica computes the same.
func rowCost(row []any) int64 {
	n := int64(24)
	for _, v := range row {
		n += 16
		switch v := v.(type) {
		case string:
			n += int64(len(v))
		case []byte:
			n += int64(len(v))
		case time.Time:
			n += 24
		default:
			n += 8
		}
	}
	return n
}
