package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftlite/raftlite/store"
)

// Metrics is one node's registry.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	fsync    prometheus.Histogram
}

// New creates the registry with the runtime collectors and the request and fsync metrics. The store's
// own metrics are added by Watch, once the store exists (it needs ObserveFsync first).
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "raftlite_http_requests_total",
			Help: "HTTP requests served, by endpoint, method, status code and consistency level.",
		}, []string{"endpoint", "method", "code", "level"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "raftlite_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by endpoint and consistency level.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100 µs to 3.3 s
		}, []string{"endpoint", "level"}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "raftlite_raft_fsync_duration_seconds",
			Help:    "Time to make a batch of Raft log entries durable (write and fsync).",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14), // 50 µs to 0.4 s
		}),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.fsync)
	return m
}

// ObserveFsync records one durable write of the Raft log (store.Config.ObserveFsync).
func (m *Metrics) ObserveFsync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

// ObserveRequest records one HTTP request. level is "" for endpoints that take none.
func (m *Metrics) ObserveRequest(endpoint, method string, code int, level string, d time.Duration) {
	m.requests.WithLabelValues(endpoint, method, strconv.Itoa(code), level).Inc()
	m.duration.WithLabelValues(endpoint, level).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Watch adds the store's state: read at scrape time from what the store keeps anyway.
func (m *Metrics) Watch(st *store.Store) {
	status := newStatusCache(st)
	gauge := func(name, help string, f func(store.Status) float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return f(status.get()) }))
	}
	counter := func(name, help string, f func(store.Status) float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return f(status.get()) }))
	}
	gauge("raftlite_raft_term", "Current Raft term.", func(s store.Status) float64 { return float64(s.Term) })
	gauge("raftlite_raft_commit_index", "Highest log index known committed.", func(s store.Status) float64 { return float64(s.CommitIndex) })
	gauge("raftlite_raft_applied_index", "Highest log index applied to the database.", func(s store.Status) float64 { return float64(s.AppliedIndex) })
	gauge("raftlite_raft_last_log_index", "Last index in this node's Raft log.", func(s store.Status) float64 { return float64(s.LastLogIndex) })
	gauge("raftlite_raft_log_bytes", "Size of the Raft log on disk.", func(s store.Status) float64 { return float64(s.LogBytes) })
	gauge("raftlite_raft_is_leader", "1 if this node leads the cluster.", func(s store.Status) float64 { return boolFloat(s.State == "Leader") })
	gauge("raftlite_raft_has_leader", "1 if this node knows a leader.", func(s store.Status) float64 { return boolFloat(s.Leader.NodeID != "") })
	gauge("raftlite_raft_members", "Members of the cluster, voters and learners.", func(s store.Status) float64 { return float64(len(s.Members)) })
	gauge("raftlite_sqlite_db_bytes", "Size of the SQLite database file.", func(s store.Status) float64 { return float64(s.DBSize) })
	gauge("raftlite_sqlite_wal_bytes", "Size of the SQLite write-ahead log.", func(s store.Status) float64 { return float64(s.WALSize) })
	counter("raftlite_raft_leader_changes_total", "Times this node saw the leader change.", func(s store.Status) float64 { return float64(s.LeaderChanges) })
	counter("raftlite_raft_proposals_total", "Entries this node proposed as leader.", func(s store.Status) float64 { return float64(s.Proposals) })
	counter("raftlite_raft_read_index_rounds_total", "ReadIndex rounds started for linearizable reads.", func(s store.Status) float64 { return float64(s.ReadIndexRounds) })
	counter("raftlite_raft_read_index_reads_total", "Linearizable reads served by those rounds.", func(s store.Status) float64 { return float64(s.ReadIndexReads) })
	counter("raftlite_raft_snapshots_sent_total", "Database snapshots streamed to followers.", func(s store.Status) float64 { return float64(s.SnapshotsSent) })
	counter("raftlite_raft_snapshot_sent_bytes_total", "Bytes of database snapshots streamed to followers.", func(s store.Status) float64 { return float64(s.SnapshotBytesSent) })
	counter("raftlite_raft_snapshots_received_total", "Database snapshots received from a leader.", func(s store.Status) float64 { return float64(s.SnapshotsReceived) })
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
