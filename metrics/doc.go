// Package metrics owns a node's Prometheus metrics: HTTP requests by endpoint, status and consistency
// level with latency histograms; Raft (term, leader changes, commit and applied indexes, proposals, fsync
// latency, ReadIndex rounds, snapshots sent and received); SQLite (database and WAL size); and the Go
// runtime. Gauges and counters the store already keeps are read at scrape time, so the hot paths pay
// nothing for them.
package metrics
