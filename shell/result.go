package shell

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// result is one statement's answer in rqlite's format: rows for a query, counts for a write, or an error.
type result struct {
	Columns      []string `json:"columns"`
	Types        []string `json:"types"`
	Values       [][]any  `json:"values"`
	RowsAffected *int64   `json:"rows_affected"`
	LastInsertID *int64   `json:"last_insert_id"`
	Error        string   `json:"error"`
	Time         float64  `json:"time"`
}

func (r *result) isQuery() bool { return r.Columns != nil }

// response is the body of /db/request, /db/execute and /db/query.
type response struct {
	Results []result `json:"results"`
	Error   string   `json:"error"`
	Time    float64  `json:"time"`
}

// decodeResponse keeps numbers as written (json.Number), so that a 64-bit integer prints exactly.
func decodeResponse(b []byte) (response, error) {
	var r response
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&r); err != nil {
		return r, fmt.Errorf("the node's answer is not JSON: %w", err)
	}
	return r, nil
}
