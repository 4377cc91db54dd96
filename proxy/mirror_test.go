package proxy

import (
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func mirrorVS(pct string) string {
	return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin, subset: v1}
      weight: 100
    mirror: {host: httpbin, subset: v2}
` + pct
}

const httpbinDR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: httpbin
spec:
  host: httpbin
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`

func waitHits(b *backend, want int64, within time.Duration) int64 {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && b.hits.Load() < want {
		time.Sleep(10 * time.Millisecond)
	}
	return b.hits.Load()
}

func TestMirrorEveryRequest(t *testing.T) {
	v1, v2 := newBackend(t, "v1", nil), newBackend(t, "v2", nil)
	p := startProxy(t, 8000, serviceEntry("httpbin", 8000, "HTTP", v1, v2), httpbinDR, mirrorVS(""))
	c := p.client()
	const n = 200
	for range n {
		if code, _, body := p.get(t, c, "httpbin:8000", "/headers"); code != 200 || body != "v1" {
			t.Fatalf("client got %d %q; want the primary's 200 v1", code, body)
		}
	}
	if got := waitHits(v2, n, 2*time.Second); got != n {
		t.Errorf("mirror saw %d of %d requests", got, n)
	}
	v2.mu.Lock()
	host := v2.hosts[0]
	v2.mu.Unlock()
	if host != "httpbin:8000" {
		t.Errorf("mirror Host = %q; want httpbin:8000 (no -shadow suffix since Istio 1.28)", host)
	}
}

func TestMirrorPercentage(t *testing.T) {
	v1, v2 := newBackend(t, "v1", nil), newBackend(t, "v2", nil)
	p := startProxy(t, 8000, serviceEntry("httpbin", 8000, "HTTP", v1, v2), httpbinDR, mirrorVS("    mirrorPercentage: {value: 30}\n"))
	c := p.client()
	const n = 3000
	for range n {
		p.get(t, c, "httpbin:8000", "/")
	}
	time.Sleep(200 * time.Millisecond)
	got := 100 * float64(v2.hits.Load()) / n
	t.Logf("mirrorPercentage 30 over %d requests: %.1f%% mirrored", n, got)
	if math.Abs(got-30) > 3 {
		t.Errorf("mirrored %.1f%%; want 30%% (±3 points)", got)
	}
}

func TestDeadOrSlowMirrorChangesNothing(t *testing.T) {
	v1 := newBackend(t, "v1", nil)
	slowMirror := newBackend(t, "v2", slow(5*time.Second))
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	for _, tc := range []struct {
		name   string
		mirror *backend
	}{{"slow", slowMirror}, {"dead", &backend{name: "v2", srv: &httptest.Server{Listener: fakeListener{deadPort}}}}} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, 8000, serviceEntry("httpbin", 8000, "HTTP", v1, tc.mirror), httpbinDR, mirrorVS(""))
			c := p.client()
			start := time.Now()
			for range 20 {
				if code, _, body := p.get(t, c, "httpbin:8000", "/"); code != 200 || body != "v1" {
					t.Fatalf("client got %d %q; want 200 v1", code, body)
				}
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("20 requests took %s with a %s mirror; want no slowdown", took, tc.name)
			}
		})
	}
}

// fakeListener stands in for a backend that is gone: only its port is
// used.
type fakeListener struct{ port int }

func (f fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (f fakeListener) Close() error              { return nil }
func (f fakeListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: f.port} }

var _ http.Handler = (*HTTPServer)(nil)

// TestMirrorShadowSuffixCompat: with the Istio 1.27 compatibility switch
// the mirror's Host gets Envoy's -shadow suffix before the port.
func TestMirrorShadowSuffixCompat(t *testing.T) {
	v1, v2 := newBackend(t, "v1", nil), newBackend(t, "v2", nil)
	p := startProxy(t, 8000, serviceEntry("httpbin", 8000, "HTTP", v1, v2), httpbinDR, mirrorVS(""))
	p.configure(func(h *HTTPServer) { h.ShadowSuffix = true })
	if code, _, _ := p.get(t, p.client(), "httpbin:8000", "/"); code != 200 {
		t.Fatalf("primary answered %d", code)
	}
	if waitHits(v2, 1, 2*time.Second) != 1 {
		t.Fatal("mirror saw nothing")
	}
	v2.mu.Lock()
	defer v2.mu.Unlock()
	if got := v2.hosts[0]; got != "httpbin-shadow:8000" {
		t.Errorf("mirror Host = %q; want httpbin-shadow:8000", got)
	}
}
