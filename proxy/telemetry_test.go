package proxy

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/remora-mesh/remora/telemetry"
)

// flagsMesh has one host per response flag; each line of traffic in
// TestMetricsAfterKnownTraffic produces exactly one flag set.
func flagsMesh(ok, slow, failing, blocked *backend, closedPort int) []string {
	vs := func(host, rule string) string {
		return fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: %s}\nspec:\n  hosts: [%s]\n  http:\n  - %s\n", host, host, rule)
	}
	se := func(host string, port int) string {
		return fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: %s}\nspec:\n  hosts: [%s]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {http: %d}}]\n", host, host, port)
	}
	return []string{
		se("ok", ok.port()), vs("ok", "match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: ok}}]"),
		se("delay", ok.port()), vs("delay", "fault: {delay: {fixedDelay: 10ms, percentage: {value: 100}}}\n    route: [{destination: {host: delay}}]"),
		se("abort", ok.port()), vs("abort", "fault: {abort: {httpStatus: 418, percentage: {value: 100}}}\n    route: [{destination: {host: abort}}]"),
		se("slow", slow.port()), vs("slow", "timeout: 100ms\n    route: [{destination: {host: slow}}]"),
		se("failing", failing.port()), vs("failing", "retries: {attempts: 2, retryOn: 5xx}\n    route: [{destination: {host: failing}}]"),
		se("closed", closedPort),
		"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: empty}\nspec:\n  hosts: [empty]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n",
		se("breaker", blocked.port()),
		"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: breaker}\nspec:\n  host: breaker\n  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: 1}\n      http: {http1MaxPendingRequests: 1}\n",
	}
}

func TestMetricsAfterKnownTraffic(t *testing.T) {
	release := make(chan struct{})
	ok := newBackend(t, "ok", nil)
	slow := newBackend(t, "slow", slowHandler(2*time.Second))
	failing := newBackend(t, "failing", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	blocked := newBackend(t, "blocked", func(w http.ResponseWriter, _ *http.Request) { <-release })
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the backends close, even on failure
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	p := startProxy(t, 80, flagsMesh(ok, slow, failing, blocked, closedPort)...)
	m := telemetry.NewMetrics()
	p.configure(func(h *HTTPServer) {
		h.Telemetry = telemetry.New(m, nil)
		h.Local = telemetry.Labels{Source: telemetry.Peer{Workload: "productpage-v1", Namespace: "default", App: "productpage", Version: "v1"}}
	})
	c := p.client()
	want := map[string]string{ // response_flags -> response_code
		"-": "200", "NR": "404", "DI": "200", "FI": "418", "UT": "504", "URX": "503", "UF,URX": "503", "UH": "503", "UO": "503",
	}
	for _, r := range []struct{ host, path string }{
		{"ok", "/api"}, {"ok", "/nothing"}, {"delay", "/"}, {"abort", "/"}, {"slow", "/"},
		{"failing", "/"}, {"closed", "/"}, {"empty", "/"},
	} {
		p.get(t, c, r.host, r.path)
	}
	// Circuit breaker: one connection, one pending; the third overflows.
	// One at a time: a request waiting for its own dial counts as pending.
	var wg sync.WaitGroup
	breaker := func() {
		wg.Add(1)
		go func() { defer wg.Done(); p.get(t, p.client(), "breaker", "/") }()
	}
	breaker()
	waitHits(blocked, 1, 5*time.Second)
	breaker()
	if !waitPending(p, "outbound|80||breaker.default.svc.cluster.local", 1, 5*time.Second) {
		t.Fatal("second breaker request never became pending")
	}
	if code, h, _ := p.get(t, p.client(), "breaker", "/"); code != 503 || h.Get("X-Envoy-Overloaded") != "true" {
		t.Errorf("third breaker request: %d overloaded=%q; want 503 with x-envoy-overloaded", code, h.Get("X-Envoy-Overloaded"))
	}
	unblock()
	wg.Wait()

	// A request is recorded once its answer is written, as in Envoy: the
	// last client may read its answer a moment before the series exists.
	waitUntil(2*time.Second, func() bool { return requestSeries(t, m) >= len(want)+1 })
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var labelNames []string
	for _, f := range fams {
		if f.GetName() != "istio_requests_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			l := labelMap(mt)
			if l["reporter"] == "overflow" || mt.GetCounter().GetValue() == 0 {
				continue
			}
			if l["response_flags"] != "-" || l["destination_service"] != "breaker" {
				got[l["response_flags"]] = l["response_code"]
			}
			if labelNames == nil {
				for _, lp := range mt.GetLabel() {
					labelNames = append(labelNames, lp.GetName())
				}
			}
			if l["reporter"] != "source" || l["source_workload"] != "productpage-v1" || l["source_app"] != "productpage" {
				t.Errorf("series %v: want reporter=source, source_workload=productpage-v1, source_app=productpage", l)
			}
		}
	}
	for flags, code := range want {
		if got[flags] != code {
			t.Errorf("istio_requests_total{response_flags=%q}: response_code %q; want %q (all: %v)", flags, got[flags], code, got)
		}
	}
	sort.Strings(labelNames)
	wantNames := "connection_security_policy destination_app destination_canonical_revision destination_canonical_service destination_cluster destination_principal destination_service destination_service_name destination_service_namespace destination_version destination_workload destination_workload_namespace grpc_response_status reporter request_protocol response_code response_flags source_app source_canonical_revision source_canonical_service source_cluster source_principal source_version source_workload source_workload_namespace"
	if strings.Join(labelNames, " ") != wantNames {
		t.Errorf("label names:\n%s\nwant:\n%s", strings.Join(labelNames, " "), wantNames)
	}
	for _, name := range []string{"istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"} {
		if !hasFamily(fams, name, dto.MetricType_HISTOGRAM) {
			t.Errorf("no histogram %s", name)
		}
	}
}

// waitPending waits until cluster has n requests waiting for a connection.
func waitPending(p *testProxy, cluster string, n int64, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, c := range p.up.Status() {
			if c.Name == cluster && c.RqPending >= n {
				return true
			}
		}
	}
	return false
}

func slowHandler(d time.Duration) http.HandlerFunc { return slow(d) }

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func hasFamily(fams []*dto.MetricFamily, name string, typ dto.MetricType) bool {
	for _, f := range fams {
		if f.GetName() == name && f.GetType() == typ {
			return true
		}
	}
	return false
}

// requestSeries counts the non-zero istio_requests_total series.
func requestSeries(t *testing.T, m *telemetry.Metrics) int {
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		if f.GetName() == "istio_requests_total" {
			for _, mt := range f.GetMetric() {
				if mt.GetCounter().GetValue() > 0 {
					n++
				}
			}
		}
	}
	return n
}
