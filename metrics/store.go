package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlite/raftlite/store"
)

// storeMetric is one metric derived from the store's status.
type storeMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(store.Status) float64
}

// StatusReporter is the node as the metrics read it.
type StatusReporter interface {
	Status() store.Status
	CDC() store.CDCStatus
}

// cdcMetric is one metric of change data capture (reported only where it is enabled).
type cdcMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(store.CDCStatus) float64
}

// storeCollector takes one store.Status per scrape (it stats files) and reports every metric from it.
type storeCollector struct {
	st      StatusReporter
	metrics []storeMetric
	cdc     []cdcMetric
}

func newStoreCollector(st StatusReporter) *storeCollector {
	c := &storeCollector{st: st}
	add := func(name, help string, kind prometheus.ValueType, value func(store.Status) float64) {
		c.metrics = append(c.metrics, storeMetric{prometheus.NewDesc(name, help, nil, nil), kind, value})
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	add("raftlite_raft_term", "Current Raft term.", gauge, func(s store.Status) float64 { return float64(s.Term) })
	add("raftlite_raft_commit_index", "Highest log index known committed.", gauge, func(s store.Status) float64 { return float64(s.CommitIndex) })
	add("raftlite_raft_applied_index", "Highest log index applied to the database.", gauge, func(s store.Status) float64 { return float64(s.AppliedIndex) })
	add("raftlite_raft_last_log_index", "Last index in this node's Raft log.", gauge, func(s store.Status) float64 { return float64(s.LastLogIndex) })
	add("raftlite_raft_log_bytes", "Size of the Raft log on disk.", gauge, func(s store.Status) float64 { return float64(s.LogBytes) })
	add("raftlite_raft_is_leader", "1 if this node leads the cluster.", gauge, func(s store.Status) float64 { return boolFloat(s.State == "Leader") })
	add("raftlite_raft_has_leader", "1 if this node knows a leader.", gauge, func(s store.Status) float64 { return boolFloat(s.Leader.NodeID != "") })
	add("raftlite_raft_members", "Members of the cluster, voters and learners.", gauge, func(s store.Status) float64 { return float64(len(s.Members)) })
	add("raftlite_sqlite_db_bytes", "Size of the SQLite database file.", gauge, func(s store.Status) float64 { return float64(s.DBSize) })
	add("raftlite_sqlite_wal_bytes", "Size of the SQLite write-ahead log.", gauge, func(s store.Status) float64 { return float64(s.WALSize) })
	add("raftlite_sqlite_reads_in_progress", "Read-only connections in use now (queries, dumps, snapshot copies).", gauge, func(s store.Status) float64 { return float64(s.ReadsInProgress) })
	add("raftlite_raft_leader_changes_total", "Times this node saw the leader change.", counter, func(s store.Status) float64 { return float64(s.LeaderChanges) })
	add("raftlite_raft_proposals_total", "Entries this node proposed as leader.", counter, func(s store.Status) float64 { return float64(s.Proposals) })
	add("raftlite_raft_read_index_rounds_total", "ReadIndex rounds started for linearizable reads.", counter, func(s store.Status) float64 { return float64(s.ReadIndexRounds) })
	add("raftlite_raft_read_index_reads_total", "Linearizable reads served by those rounds.", counter, func(s store.Status) float64 { return float64(s.ReadIndexReads) })
	add("raftlite_raft_snapshots_sent_total", "Database snapshots streamed to followers.", counter, func(s store.Status) float64 { return float64(s.SnapshotsSent) })
	add("raftlite_raft_snapshot_sent_bytes_total", "Bytes of database snapshots streamed to followers.", counter, func(s store.Status) float64 { return float64(s.SnapshotBytesSent) })
	add("raftlite_raft_snapshots_received_total", "Database snapshots received from a leader.", counter, func(s store.Status) float64 { return float64(s.SnapshotsReceived) })
	add("raftlite_raft_snapshot_received_bytes_total", "Bytes of database snapshots received from a leader.", counter, func(s store.Status) float64 { return float64(s.SnapshotBytesReceived) })
	addCDC := func(name, help string, kind prometheus.ValueType, value func(store.CDCStatus) float64) {
		c.cdc = append(c.cdc, cdcMetric{prometheus.NewDesc(name, help, nil, nil), kind, value})
	}
	addCDC("raftlite_cdc_queue_length", "Groups of row changes queued on this node, not yet known delivered.", gauge, func(s store.CDCStatus) float64 { return float64(s.Queue.Length) })
	addCDC("raftlite_cdc_high_watermark", "Highest log index known delivered to the CDC endpoint.", gauge, func(s store.CDCStatus) float64 { return float64(s.HighWatermark) })
	addCDC("raftlite_cdc_batches_sent_total", "CDC batches the endpoint accepted.", counter, func(s store.CDCStatus) float64 { return float64(s.Stats.BatchesOK.Load()) })
	addCDC("raftlite_cdc_send_failures_total", "CDC POSTs that failed (each retry counts).", counter, func(s store.CDCStatus) float64 { return float64(s.Stats.AttemptsFailed.Load()) })
	addCDC("raftlite_cdc_retries_total", "CDC batches sent again after a failure.", counter, func(s store.CDCStatus) float64 { return float64(s.Stats.Retries.Load()) })
	addCDC("raftlite_cdc_dropped_batches_total", "CDC batches given up after transmit_max_retries.", counter, func(s store.CDCStatus) float64 { return float64(s.Stats.Dropped.Load()) })
	addCDC("raftlite_cdc_sent_bytes_total", "Bytes of CDC batches sent, retries included.", counter, func(s store.CDCStatus) float64 { return float64(s.Stats.BytesSent.Load()) })
	return c
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
	for _, m := range c.cdc {
		ch <- m.desc
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.st.Status()
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st))
	}
	if cs := c.st.CDC(); cs.Enabled {
		for _, m := range c.cdc {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(cs))
		}
	}
}
