// Package telemetry holds Istio's standard metrics, remora's own metrics,
// response flags and the access log. Metric and label names are spelled here
// once.
//
// Istio's metrics (all with Istio's label sets, see Labels):
//
//	istio_requests_total                  counter    per HTTP/gRPC request
//	istio_request_duration_milliseconds   histogram  request start to completion, ms
//	istio_request_bytes                   histogram  wire bytes received downstream
//	istio_response_bytes                  histogram  wire bytes sent downstream
//	istio_tcp_connections_opened_total    counter    per TCP connection
//	istio_tcp_connections_closed_total    counter    per TCP connection
//	istio_tcp_sent_bytes_total            counter    bytes sent downstream
//	istio_tcp_received_bytes_total        counter    bytes received downstream
//
// Histograms use Envoy's default buckets, as Istio does (Buckets).
//
// remora's own metrics:
//
//	remora_config_reloads_total{result}                 counter  config loads: success, error
//	remora_outlier_ejections_total{cluster}             counter  endpoints ejected by outlier detection
//	remora_upstream_overflows_total{cluster,breaker}    counter  requests refused by a circuit breaker
//	remora_active_connections{listener}                 gauge    open downstream connections
//	remora_active_requests                              gauge    HTTP requests in flight
//	remora_access_log_dropped_total                     counter  access-log lines dropped, queue full
//	remora_access_log_write_errors_total                counter  failed access-log writes
//	remora_telemetry_overflow_records_total{kind}       counter  records folded into the overflow series
package telemetry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Buckets are the histogram bucket upper bounds of Istio's duration (ms)
// and size (bytes) histograms: Envoy's defaults, which Istio keeps unless a
// pod sets sidecar.istio.io/statsHistogramBuckets.
var Buckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000,
	10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// Breaker names for remora_upstream_overflows_total's breaker label, one per
// DestinationRule connectionPool limit.
const (
	BreakerMaxConnections     = "max_connections"
	BreakerMaxPendingRequests = "max_pending_requests"
	BreakerMaxRequests        = "max_requests"
	BreakerMaxRetries         = "max_retries"
)

// Metrics is one process's metric registry. It is safe for concurrent use.
// Proxy code records Istio's metrics through Telemetry; the exported vectors
// are for code that reports rare events (reloads, ejections, overflows).
// Their label values must come from config (cluster and listener names),
// never from the wire.
type Metrics struct {
	Registry *prometheus.Registry
	// ConfigReloads counts config loads by result ("success" or "error").
	ConfigReloads *prometheus.CounterVec
	// OutlierEjections counts outlier-detection ejections by cluster name.
	OutlierEjections *prometheus.CounterVec
	// ActiveConnections is the number of open downstream connections by
	// listener name.
	ActiveConnections *prometheus.GaugeVec
	// ActiveRequests is the number of HTTP requests in flight.
	ActiveRequests prometheus.Gauge
	// AccessLogDropped counts access-log lines dropped because the queue
	// was full.
	AccessLogDropped prometheus.Counter
	// AccessLogWriteErrors counts access-log writes that failed.
	AccessLogWriteErrors prometheus.Counter

	istio istioMetrics
}

// NewMetrics returns a registry with Istio's standard metrics, remora's
// own metrics, and the Go runtime and process collectors.
func NewMetrics() *Metrics { return newMetrics(DefaultMaxSeries) }

// newMetrics is NewMetrics with maxSeries series per group of Istio metrics.
func newMetrics(maxSeries int) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.ConfigReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "remora_config_reloads_total",
		Help: "Config loads, by result (success or error).",
	}, []string{"result"})
	m.ConfigReloads.WithLabelValues("success")
	m.ConfigReloads.WithLabelValues("error")
	m.OutlierEjections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "remora_outlier_ejections_total",
		Help: "Endpoints ejected by outlier detection, by cluster.",
	}, []string{"cluster"})
	m.ActiveConnections = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "remora_active_connections",
		Help: "Open downstream connections, by listener.",
	}, []string{"listener"})
	m.ActiveRequests = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "remora_active_requests",
		Help: "HTTP requests in flight.",
	})
	m.AccessLogDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "remora_access_log_dropped_total",
		Help: "Access-log lines dropped because the queue was full.",
	})
	m.AccessLogWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "remora_access_log_write_errors_total",
		Help: "Access-log writes that failed.",
	})
	m.Registry.MustRegister(m.ConfigReloads, m.OutlierEjections,
		m.ActiveConnections, m.ActiveRequests, m.AccessLogDropped, m.AccessLogWriteErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.istio.init(m.Registry, maxSeries)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// OverflowCounts reports, for every cluster, how often each circuit breaker
// refused a request or connection: yield(cluster, breaker, total) with
// breaker one of the Breaker* names.
type OverflowCounts func(yield func(cluster, breaker string, total uint64))

// WatchOverflows exports remora_upstream_overflows_total{cluster,breaker},
// read from src at each scrape, so the request path counts nothing extra.
// Call it once.
func (m *Metrics) WatchOverflows(src OverflowCounts) {
	m.Registry.MustRegister(&overflowCollector{src: src})
}

var overflowDesc = prometheus.NewDesc("remora_upstream_overflows_total",
	"Requests or connections refused by a circuit breaker (flag UO), by cluster and breaker.",
	[]string{"cluster", "breaker"}, nil)

type overflowCollector struct{ src OverflowCounts }

func (c *overflowCollector) Describe(ch chan<- *prometheus.Desc) { ch <- overflowDesc }

func (c *overflowCollector) Collect(ch chan<- prometheus.Metric) {
	c.src(func(cluster, breaker string, total uint64) {
		ch <- prometheus.MustNewConstMetric(overflowDesc, prometheus.CounterValue, float64(total), cluster, breaker)
	})
}
