// Package api serves raftlite's rqlite-compatible HTTP API: it parses requests (query parameters, plain
// SQL and JSON bodies), makes writes deterministic, calls the store or forwards to the leader, and encodes
// responses in rqlite's formats.
package api
