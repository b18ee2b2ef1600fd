package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
		m.requests, m.duration, m.fsync, newBackupCollector())
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

// Watch adds the store's state, read once per scrape from what the store keeps anyway.
func (m *Metrics) Watch(st StatusReporter) { m.reg.MustRegister(newStoreCollector(st)) }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
