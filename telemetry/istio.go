package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// istioMetrics holds Istio's standard metric vectors and the caches of
// their resolved children.
type istioMetrics struct {
	requests, tcpOpened, tcpClosed, tcpSent, tcpReceived *prometheus.CounterVec
	duration, requestBytes, responseBytes                *prometheus.HistogramVec

	http *seriesCache[httpKey, httpSeries]
	tcp  *seriesCache[tcpKey, tcpSeries]
}

// httpSeries is one label combination's children of the HTTP metrics.
type httpSeries struct {
	requests                              prometheus.Counter
	duration, requestBytes, responseBytes prometheus.Observer
}

// tcpSeries is one label combination's children of the TCP metrics.
type tcpSeries struct {
	opened, closed, sent, received prometheus.Counter
}

// init creates and registers the vectors and caches.
func (im *istioMetrics) init(reg *prometheus.Registry, maxSeries int) {
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	histogram := func(name, help string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: Buckets}, httpLabelNames)
	}
	im.requests = counter("istio_requests_total", "HTTP and gRPC requests, counted at completion.", httpLabelNames)
	im.duration = histogram("istio_request_duration_milliseconds", "Request duration in milliseconds.")
	im.requestBytes = histogram("istio_request_bytes", "Request size in bytes (headers and body).")
	im.responseBytes = histogram("istio_response_bytes", "Response size in bytes (headers and body).")
	im.tcpOpened = counter("istio_tcp_connections_opened_total", "TCP connections opened.", tcpLabelNames)
	im.tcpClosed = counter("istio_tcp_connections_closed_total", "TCP connections closed.", tcpLabelNames)
	im.tcpSent = counter("istio_tcp_sent_bytes_total", "Bytes sent to the downstream on TCP connections.", tcpLabelNames)
	im.tcpReceived = counter("istio_tcp_received_bytes_total", "Bytes received from the downstream on TCP connections.", tcpLabelNames)
	overflowed := counter("remora_telemetry_overflow_records_total",
		"Records folded into the overflow series because a metric group reached its series cap, by kind (http, tcp).",
		[]string{"kind"})
	reg.MustRegister(im.requests, im.duration, im.requestBytes, im.responseBytes,
		im.tcpOpened, im.tcpClosed, im.tcpSent, im.tcpReceived, overflowed)

	im.http = newSeriesCache(maxSeries, func(k httpKey) *httpSeries { return im.httpChildren(k.values()) },
		func() *httpSeries { return im.httpChildren(overflowValues(len(httpLabelNames))) }, overflowed.WithLabelValues("http"))
	im.tcp = newSeriesCache(maxSeries, func(k tcpKey) *tcpSeries { return im.tcpChildren(k.values()) },
		func() *tcpSeries { return im.tcpChildren(overflowValues(len(tcpLabelNames))) }, overflowed.WithLabelValues("tcp"))
}

// httpChildren resolves the HTTP metrics' children for label values v.
func (im *istioMetrics) httpChildren(v []string) *httpSeries {
	return &httpSeries{
		requests:      im.requests.WithLabelValues(v...),
		duration:      im.duration.WithLabelValues(v...),
		requestBytes:  im.requestBytes.WithLabelValues(v...),
		responseBytes: im.responseBytes.WithLabelValues(v...),
	}
}

// tcpChildren resolves the TCP metrics' children for label values v.
func (im *istioMetrics) tcpChildren(v []string) *tcpSeries {
	return &tcpSeries{
		opened:   im.tcpOpened.WithLabelValues(v...),
		closed:   im.tcpClosed.WithLabelValues(v...),
		sent:     im.tcpSent.WithLabelValues(v...),
		received: im.tcpReceived.WithLabelValues(v...),
	}
}

// recordHTTP counts one completed HTTP request.
func (im *istioMetrics) recordHTTP(r *HTTPRecord) {
	k := httpKey{labels: r.Labels, code: int32(r.ResponseCode), grpc: -1, flags: r.Flags}
	if r.Labels.Protocol == ProtocolGRPC {
		k.grpc = r.GRPCStatus
	}
	s := im.http.get(&k)
	s.requests.Inc()
	// Istio records whole milliseconds.
	s.duration.Observe(float64(r.Duration / time.Millisecond))
	s.requestBytes.Observe(float64(r.RequestBytes))
	s.responseBytes.Observe(float64(r.ResponseBytes))
}

// tcpSeriesFor returns the TCP series for labels l and flags f.
func (im *istioMetrics) tcpSeriesFor(l *Labels, f ResponseFlags) *tcpSeries {
	k := tcpKey{labels: *l, flags: f}
	k.labels.Protocol = ProtocolTCP
	return im.tcp.get(&k)
}
