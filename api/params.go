package api

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// params are the query parameters of a request. As in rqlite, only the first value of a
// key counts, and boolean flags are true when present, whatever their value.
type params struct {
	values url.Values
	raw    string

	pretty, timings, transaction, queue, wait, associative, blobArray, qualifyColumns bool
	noparse, norwrandom, norwtime, raftIndex, redirect, noleader, nonvoters, sync     bool
	freshnessStrict, vacuum, compress                                                 bool

	timeout, freshness, dbTimeout, linearizableTimeout time.Duration
	hasTimeout, hasLinearizableTimeout                 bool
	retries, trailingLogs                              int
	minIndex                                           uint64

	level                    string
	q                        string
	hasQ                     bool
	ver, key, format, tables string
}

const defaultTimeout = 30 * time.Second

// parseParams validates the query string; an error is the 400 message.
func parseParams(u *url.URL) (*params, error) {
	v := u.Query()
	p := &params{values: v, raw: u.RawQuery}
	has := func(k string) bool { _, ok := v[k]; return ok }
	p.pretty, p.timings, p.transaction = has("pretty"), has("timings"), has("transaction")
	p.queue, p.wait, p.associative = has("queue"), has("wait"), has("associative")
	p.blobArray, p.qualifyColumns, p.noparse = has("blob_array"), has("qualify_columns"), has("noparse")
	p.norwrandom, p.norwtime, p.raftIndex = has("norwrandom"), has("norwtime"), has("raft_index")
	p.redirect, p.noleader, p.nonvoters, p.sync = has("redirect"), has("noleader"), has("nonvoters"), has("sync")
	p.freshnessStrict, p.vacuum, p.compress = has("freshness_strict"), has("vacuum"), has("compress")
	p.level = strings.ToLower(v.Get("level"))
	if p.level != "" && !slices.Contains(levels, p.level) {
		// rqlite reads any other value as weak; a mistyped level=strnog would then be served as a weak read,
		// which the client never asked for.
		return nil, fmt.Errorf("level %s is not a consistency level: use one of %s", quoteShort(v.Get("level")), strings.Join(levels, ", "))
	}
	p.ver, p.key, p.format, p.tables = v.Get("ver"), v.Get("key"), strings.ToLower(v.Get("fmt")), v.Get("tables")
	if p.freshnessStrict && !has("freshness") {
		return nil, fmt.Errorf("freshness_strict requires freshness")
	}
	durations := []struct {
		key string
		dst *time.Duration
		has *bool
	}{
		{"timeout", &p.timeout, &p.hasTimeout},
		{"freshness", &p.freshness, nil},
		{"db_timeout", &p.dbTimeout, nil},
		{"linearizable_timeout", &p.linearizableTimeout, &p.hasLinearizableTimeout},
	}
	for _, d := range durations {
		if !has(d.key) {
			continue
		}
		dur, err := time.ParseDuration(v.Get(d.key))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid duration", d.key)
		}
		if dur < 0 {
			return nil, fmt.Errorf("%s must not be negative", d.key)
		}
		*d.dst = dur
		if d.has != nil {
			*d.has = true
		}
	}
	ints := []struct {
		key string
		dst *int
	}{{"retries", &p.retries}, {"trailing_logs", &p.trailingLogs}}
	for _, n := range ints {
		if !has(n.key) {
			continue
		}
		i, err := strconv.Atoi(v.Get(n.key))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid integer", n.key)
		}
		*n.dst = i
	}
	if has("min_index") {
		i, err := strconv.ParseUint(v.Get("min_index"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("min_index is not a valid index")
		}
		p.minIndex = i
	}
	if has("q") {
		p.hasQ = true
		p.q = v.Get("q")
		if p.q == "" {
			return nil, fmt.Errorf("query parameter not set")
		}
	}
	if !p.hasTimeout {
		p.timeout = defaultTimeout
	}
	return p, nil
}

// levels are the values of ?level, in the order the error message lists them.
var levels = []string{"none", "weak", "linearizable", "strong", "auto"}

// quoteShort quotes a client's value for an error message, cut short if it is long.
func quoteShort(s string) string {
	if r := []rune(s); len(r) > 32 {
		s = string(r[:32]) + "…"
	}
	return strconv.Quote(s)
}
