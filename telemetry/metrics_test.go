package telemetry

import (
	"io"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// testLabels is a typical inbound request's labels.
func testLabels() Labels {
	return Labels{
		Reporter:       ReporterDestination,
		Source:         Peer{Workload: "productpage-v1", Namespace: "default", Principal: "spiffe://cluster.local/ns/default/sa/productpage", App: "productpage", Version: "v1"},
		Destination:    Peer{Workload: "reviews-v2", Namespace: "default", App: "reviews", Version: "v2", CanonicalService: "reviews", CanonicalRevision: "v2", Cluster: "Kubernetes"},
		Service:        Service{Host: "reviews.default.svc.cluster.local", Name: "reviews", Namespace: "default"},
		SecurityPolicy: SecurityMutualTLS,
	}
}

// family returns the named metric family from m's registry, or fails.
func family(t *testing.T, m *Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no metric family %s", name)
	return nil
}

// labelMap returns a series' labels as a map.
func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// find returns the series of f whose labels include want, or fails.
func find(t *testing.T, f *dto.MetricFamily, want map[string]string) *dto.Metric {
	t.Helper()
next:
	for _, m := range f.GetMetric() {
		got := labelMap(m)
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s: no series with %v", f.GetName(), want)
	return nil
}

func sortedNames(m *dto.Metric) []string {
	var names []string
	for k := range labelMap(m) {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func TestHTTPMetrics(t *testing.T) {
	m := NewMetrics()
	tel := New(m, nil)
	r := HTTPRecord{Labels: testLabels(), ResponseCode: 200, Duration: 7 * time.Millisecond,
		RequestBytes: 300, ResponseBytes: 4000}
	for range 3 {
		tel.RecordHTTP(&r)
	}
	r.ResponseCode, r.Flags, r.Duration = 503, UpstreamConnectionFailure|UpstreamRetryLimitExceeded, 1500*time.Microsecond
	tel.RecordHTTP(&r)

	f := family(t, m, "istio_requests_total")
	if f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("istio_requests_total type = %v; want COUNTER", f.GetType())
	}
	ok := find(t, f, map[string]string{"response_code": "200"})
	want := map[string]string{
		"reporter": "destination", "source_workload": "productpage-v1", "source_canonical_service": "unknown",
		"source_canonical_revision": "unknown", "source_workload_namespace": "default",
		"source_principal": "spiffe://cluster.local/ns/default/sa/productpage", "source_app": "productpage",
		"source_version": "v1", "source_cluster": "unknown", "destination_workload": "reviews-v2",
		"destination_workload_namespace": "default", "destination_principal": "unknown", "destination_app": "reviews",
		"destination_version": "v2", "destination_service": "reviews.default.svc.cluster.local",
		"destination_canonical_service": "reviews", "destination_canonical_revision": "v2",
		"destination_service_name": "reviews", "destination_service_namespace": "default",
		"destination_cluster": "Kubernetes", "request_protocol": "http", "response_code": "200",
		"grpc_response_status": "", "response_flags": "-", "connection_security_policy": "mutual_tls",
	}
	if got := labelMap(ok); !mapsEqual(got, want) {
		t.Errorf("labels = %v; want %v", got, want)
	}
	if got := ok.GetCounter().GetValue(); got != 3 {
		t.Errorf("200 count = %v; want 3", got)
	}
	bad := find(t, f, map[string]string{"response_code": "503"})
	if got := labelMap(bad)["response_flags"]; got != "UF,URX" {
		t.Errorf("response_flags = %q; want UF,URX", got)
	}

	d := find(t, family(t, m, "istio_request_duration_milliseconds"), map[string]string{"response_code": "200"})
	checkHistogram(t, "duration 200", d, 3, 21)
	d = find(t, family(t, m, "istio_request_duration_milliseconds"), map[string]string{"response_code": "503"})
	checkHistogram(t, "duration 503", d, 1, 1) // whole ms, as Istio records
	checkHistogram(t, "request bytes", find(t, family(t, m, "istio_request_bytes"), map[string]string{"response_code": "200"}), 3, 900)
	checkHistogram(t, "response bytes", find(t, family(t, m, "istio_response_bytes"), map[string]string{"response_code": "200"}), 3, 12000)
}

// checkHistogram checks a histogram series' count, sum and Istio's bucket bounds.
func checkHistogram(t *testing.T, what string, m *dto.Metric, count uint64, sum float64) {
	t.Helper()
	h := m.GetHistogram()
	if h == nil {
		t.Fatalf("%s: not a histogram", what)
	}
	if h.GetSampleCount() != count || h.GetSampleSum() != sum {
		t.Errorf("%s: count, sum = %d, %v; want %d, %v", what, h.GetSampleCount(), h.GetSampleSum(), count, sum)
	}
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	want := []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}
	if !slices.Equal(bounds, want) {
		t.Errorf("%s: buckets = %v; want %v", what, bounds, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestGRPCStatusLabel(t *testing.T) {
	m := NewMetrics()
	tel := New(m, nil)
	l := testLabels()
	l.Protocol = ProtocolGRPC
	tel.RecordHTTP(&HTTPRecord{Labels: l, ResponseCode: 200, GRPCStatus: 14})
	tel.RecordHTTP(&HTTPRecord{Labels: l, ResponseCode: 200, GRPCStatus: NoGRPCStatus})
	l.Protocol = ProtocolHTTP
	tel.RecordHTTP(&HTTPRecord{Labels: l, ResponseCode: 404, GRPCStatus: 5, Flags: NoRouteFound})
	f := family(t, m, "istio_requests_total")
	find(t, f, map[string]string{"request_protocol": "grpc", "grpc_response_status": "14"})
	find(t, f, map[string]string{"request_protocol": "grpc", "grpc_response_status": ""})
	find(t, f, map[string]string{"request_protocol": "http", "grpc_response_status": "", "response_flags": "NR"})
}

func TestTCPMetrics(t *testing.T) {
	m := NewMetrics()
	tel := New(m, nil)
	l := testLabels()
	l.Reporter, l.SecurityPolicy = ReporterSource, SecurityUnknown
	var c TCPConn
	tel.RecordTCPOpen(&c, &l)
	tel.RecordTCPBytes(&c, 100, 10)
	tel.RecordTCPBytes(&c, 150, 10)
	tel.RecordTCPClose(&c, &TCPRecord{Labels: l, SentBytes: 200, ReceivedBytes: 30})

	var refused TCPConn
	tel.RecordTCPOpen(&refused, &l)
	tel.RecordTCPClose(&refused, &TCPRecord{Labels: l, Flags: UpstreamConnectionFailure})

	opened := family(t, m, "istio_tcp_connections_opened_total")
	s := find(t, opened, map[string]string{"response_flags": "-"})
	if got := s.GetCounter().GetValue(); got != 2 {
		t.Errorf("opened = %v; want 2", got)
	}
	want := []string{"connection_security_policy", "destination_app", "destination_canonical_revision",
		"destination_canonical_service", "destination_cluster", "destination_principal", "destination_service",
		"destination_service_name", "destination_service_namespace", "destination_version", "destination_workload",
		"destination_workload_namespace", "reporter", "request_protocol", "response_flags", "source_app",
		"source_canonical_revision", "source_canonical_service", "source_cluster", "source_principal",
		"source_version", "source_workload", "source_workload_namespace"}
	if got := sortedNames(s); !slices.Equal(got, want) {
		t.Errorf("TCP label names = %v; want %v", got, want)
	}
	if got := labelMap(s); got["request_protocol"] != "tcp" || got["reporter"] != "source" || got["connection_security_policy"] != "unknown" {
		t.Errorf("TCP labels = %v", got)
	}
	closed := family(t, m, "istio_tcp_connections_closed_total")
	for flags, n := range map[string]float64{"-": 1, "UF": 1} {
		if got := find(t, closed, map[string]string{"response_flags": flags}).GetCounter().GetValue(); got != n {
			t.Errorf("closed{response_flags=%s} = %v; want %v", flags, got, n)
		}
	}
	sent := find(t, family(t, m, "istio_tcp_sent_bytes_total"), map[string]string{"response_flags": "-"})
	recv := find(t, family(t, m, "istio_tcp_received_bytes_total"), map[string]string{"response_flags": "-"})
	if sent.GetCounter().GetValue() != 200 || recv.GetCounter().GetValue() != 30 {
		t.Errorf("sent, received = %v, %v; want 200, 30", sent.GetCounter().GetValue(), recv.GetCounter().GetValue())
	}
}

func TestCardinalityCap(t *testing.T) {
	m := newMetrics(5)
	tel := New(m, nil)
	l := testLabels()
	for i := range 20 {
		l.Service.Host = "svc" + strconv.Itoa(i)
		tel.RecordHTTP(&HTTPRecord{Labels: l, ResponseCode: 200})
	}
	l.Service.Host = "svc0" // an existing series still counts in its own
	tel.RecordHTTP(&HTTPRecord{Labels: l, ResponseCode: 200})

	f := family(t, m, "istio_requests_total")
	if got := len(f.GetMetric()); got != 6 {
		t.Errorf("series = %d; want 5 and the overflow series", got)
	}
	if got := find(t, f, map[string]string{"destination_service": "svc0"}).GetCounter().GetValue(); got != 2 {
		t.Errorf("svc0 count = %v; want 2", got)
	}
	over := find(t, f, map[string]string{"reporter": "overflow", "destination_service": "overflow"})
	if got := over.GetCounter().GetValue(); got != 15 {
		t.Errorf("overflow count = %v; want 15", got)
	}
	dropped := find(t, family(t, m, "remora_telemetry_overflow_records_total"), map[string]string{"kind": "http"})
	if got := dropped.GetCounter().GetValue(); got != 15 {
		t.Errorf("overflow records = %v; want 15", got)
	}
	if got := m.istio.http.len(); got != 5 {
		t.Errorf("cache holds %d series; want 5", got)
	}
}

func TestScrapeText(t *testing.T) {
	m := NewMetrics()
	tel := New(m, nil)
	tel.RecordHTTP(&HTTPRecord{Labels: testLabels(), ResponseCode: 200})
	var conn TCPConn
	tl := testLabels()
	tel.RecordTCPOpen(&conn, &tl)
	tel.RecordTCPClose(&conn, &TCPRecord{Labels: tl, SentBytes: 10, ReceivedBytes: 20})
	m.OutlierEjections.WithLabelValues("outbound|9080||reviews.default.svc.cluster.local").Inc()
	m.WatchOverflows(func(yield func(cluster, breaker string, total uint64)) {
		yield("outbound|9080||reviews.default.svc.cluster.local", BreakerMaxRequests, 1)
	})
	m.ActiveConnections.WithLabelValues("virtualOutbound").Inc()
	m.ActiveRequests.Inc()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/stats/prometheus", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"# TYPE istio_requests_total counter",
		"# TYPE istio_request_duration_milliseconds histogram",
		"# TYPE istio_request_bytes histogram",
		"# TYPE istio_response_bytes histogram",
		"# TYPE istio_tcp_sent_bytes_total counter",
		"# TYPE istio_tcp_received_bytes_total counter",
		"# TYPE istio_tcp_connections_opened_total counter",
		"# TYPE istio_tcp_connections_closed_total counter",
		`le="3.6e+06"`,
		`remora_config_reloads_total{result="success"} 0`,
		`remora_outlier_ejections_total{cluster="outbound|9080||reviews.default.svc.cluster.local"} 1`,
		`remora_upstream_overflows_total{breaker="max_requests",cluster="outbound|9080||reviews.default.svc.cluster.local"} 1`,
		`remora_active_connections{listener="virtualOutbound"} 1`,
		"remora_active_requests 1",
		"remora_access_log_dropped_total 0",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestNilTelemetry(t *testing.T) {
	var tel *Telemetry
	var c TCPConn
	l := testLabels()
	tel.RecordHTTP(&HTTPRecord{})
	tel.RecordTCPOpen(&c, &l)
	tel.RecordTCPBytes(&c, 1, 1)
	tel.RecordTCPClose(&c, &TCPRecord{})
}

func TestConcurrentRecord(t *testing.T) {
	m := newMetrics(50)
	tel := New(m, nil)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			l := testLabels()
			for i := range 500 {
				l.Service.Host = "svc" + strconv.Itoa((i*7+g)%80)
				tel.RecordHTTP(&HTTPRecord{Labels: l, ResponseCode: 200})
			}
		}()
	}
	for range 8 {
		<-done
	}
	var total float64
	for _, s := range family(t, m, "istio_requests_total").GetMetric() {
		total += s.GetCounter().GetValue()
	}
	if total != 8*500 {
		t.Errorf("total requests = %v; want %d", total, 8*500)
	}
}
