package api

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/raftlite/raftlite/command"
)

// Messages of rqlite's body parser; all are 400s.
var (
	errInvalidJSON  = errors.New("invalid JSON body")
	errInvalidReq   = errors.New("invalid request")
	errNoStatements = errors.New("no statements")
)

// parseStatements reads a request body: with plainText, the whole body is one statement; otherwise it
// is rqlite's JSON: an array whose elements are SQL strings or [sql, params...] arrays, params being
// positional values, byte arrays, or objects of named values. Empty SQL strings are skipped.
func parseStatements(body []byte, plainText bool) ([]*command.Statement, error) {
	if plainText {
		return []*command.Statement{{Sql: string(body)}}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, errInvalidJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errInvalidJSON // trailing data after the array
	}
	elems, ok := top.([]any)
	if !ok {
		return nil, errInvalidReq
	}
	if len(elems) == 0 {
		return nil, errNoStatements
	}
	out := make([]*command.Statement, 0, len(elems))
	for _, e := range elems {
		switch x := e.(type) {
		case string:
			if x != "" {
				out = append(out, &command.Statement{Sql: x})
			}
		case []any:
			st, err := parameterised(x)
			if err != nil {
				return nil, err
			}
			if st.Sql != "" {
				out = append(out, st)
			}
		default:
			return nil, errInvalidReq
		}
	}
	return out, nil
}

func parameterised(x []any) (*command.Statement, error) {
	if len(x) == 0 {
		return nil, errInvalidReq
	}
	sql, ok := x[0].(string)
	if !ok {
		return nil, errInvalidReq
	}
	st := &command.Statement{Sql: sql}
	for _, v := range x[1:] {
		if named, ok := v.(map[string]any); ok {
			// Sorted, so that the same request always encodes to the same log entry.
			for _, k := range sortedKeys(named) {
				p, err := parameter(named[k], true)
				if err != nil {
					return nil, err
				}
				p.Name = k
				st.Parameters = append(st.Parameters, p)
			}
			continue
		}
		p, err := parameter(v, false)
		if err != nil {
			return nil, err
		}
		st.Parameters = append(st.Parameters, p)
	}
	return st, nil
}

// parameter maps one JSON value to a bound parameter.
func parameter(v any, inObject bool) (*command.Parameter, error) {
	switch x := v.(type) {
	case nil:
		return &command.Parameter{}, nil
	case bool:
		return &command.Parameter{Value: &command.Parameter_B{B: x}}, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return &command.Parameter{Value: &command.Parameter_I{I: i}}, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("unsupported type %s", x)
		}
		return &command.Parameter{Value: &command.Parameter_D{D: f}}, nil
	case string:
		if b, ok := hexBlob(x); ok {
			return &command.Parameter{Value: &command.Parameter_Y{Y: b}}, nil
		}
		return &command.Parameter{Value: &command.Parameter_S{S: x}}, nil
	case []any:
		b := make([]byte, len(x))
		for i, e := range x {
			n, ok := e.(json.Number)
			iv, err := strconv.ParseInt(string(n), 10, 64)
			if !ok || err != nil || iv < 0 || iv > 255 {
				return nil, fmt.Errorf("unsupported type %v", e)
			}
			b[i] = byte(iv)
		}
		return &command.Parameter{Value: &command.Parameter_Y{Y: b}}, nil
	case map[string]any:
		return nil, fmt.Errorf("unsupported type map[string]interface {}")
	}
	return nil, fmt.Errorf("unsupported type %T", v)
}

// hexBlob recognises rqlite's way of sending a BLOB as a string: x'0A1B' (either case of x).
func hexBlob(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 3 || (s[0] != 'x' && s[0] != 'X') || s[1] != '\'' || s[len(s)-1] != '\'' {
		return nil, false
	}
	b, err := hex.DecodeString(s[2 : len(s)-1])
	if err != nil {
		return nil, false
	}
	return b, true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
