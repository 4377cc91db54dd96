package proxy

import (
	"io"
	"net/http"
	"net/netip"
	"testing"

	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/telemetry"
)

// benchMesh is the bench suite's route shape: a header rule ahead of the
// default route, response and request header operations, and a
// DestinationRule with pool limits and outlier detection.
const benchMesh = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench}
spec:
  hosts: [bench.test]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: bench.test}}]
  - route: [{destination: {host: bench.test}}]
    headers:
      request: {set: {x-route: default}, remove: [x-internal]}
      response: {set: {x-bench: remora}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: bench}
spec:
  host: bench.test
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1024}
      http: {http1MaxPendingRequests: 1024}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
`

// BenchmarkHTTPPath sends requests through HTTPServer to a loopback
// backend over keep-alive connections, with metrics and the access log
// on: the whole per-request cost of the proxy (client and backend
// included in the figures; compare allocs/op with
// BenchmarkHTTPPathDirect for the proxy's share).
func BenchmarkHTTPPath(b *testing.B) {
	be := newBackend(b, "v1", nil)
	p := startProxy(b, 8000, serviceEntry("bench.test", 8000, "HTTP", be), benchMesh)
	alog := telemetry.NewAccessLog(io.Discard, 0, nil)
	b.Cleanup(func() { alog.Close() })
	p.configure(func(h *HTTPServer) { h.Telemetry = telemetry.New(telemetry.NewMetrics(), alog) })
	benchGets(b, p.client(), "http://bench.test:8000/get")
}

// BenchmarkHTTPPathDirect is BenchmarkHTTPPath without the proxy: the
// client and backend's own cost.
func BenchmarkHTTPPathDirect(b *testing.B) {
	be := newBackend(b, "v1", nil)
	benchGets(b, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, be.srv.URL+"/get")
}

func benchGets(b *testing.B, c *http.Client, url string) {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("User-Agent", "bench")
	get := func() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	get()
	b.ReportAllocs()
	for b.Loop() {
		get()
	}
}

// BenchmarkUpstreamRequest is the header rewriting of one request:
// hop-by-hop removal, x-forwarded-proto, the route's header operations.
func BenchmarkUpstreamRequest(b *testing.B) {
	be := newBackend(b, "v1", nil)
	p := startProxy(b, 8000, serviceEntry("bench.test", 8000, "HTTP", be), benchMesh)
	r, _ := http.NewRequest("GET", "http://bench.test:8000/get?x=1", nil)
	r.RequestURI = "/get?x=1"
	r.Header = http.Header{"User-Agent": {"fortio"}, "Accept": {"*/*"}, "Connection": {"keep-alive"},
		"X-Request-Id": {"0f6c2c7e-4b5b-4b8e-9d1e-6f7d1c2a3b4c"}, "X-Internal": {"1"}}
	st := &reqState{h: p.h, r: r, ci: &ConnInfo{Port: 8000, Original: netip.MustParseAddrPort("127.0.0.2:8000")}, snap: p.store.Load()}
	st.routingRequest()
	st.res = st.snap.Routes.Match(&st.rreq)
	if st.res.Outcome != routing.Matched {
		b.Fatalf("outcome %v", st.res.Outcome)
	}
	st.dest = st.res.Route.Pick(1)
	bd := &body{}
	b.ReportAllocs()
	for b.Loop() {
		up, err := st.upstreamRequest(bd)
		if err != nil || up.Header.Get("X-Route") != "default" {
			b.Fatalf("%v %v", err, up.Header)
		}
	}
}
