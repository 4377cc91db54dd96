package proxy

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// hammer sends n requests from each of clients concurrent clients (each on
// its own connections) and returns the count per status and the median
// time to an overflow (503 UO) answer.
func hammer(t *testing.T, p *testProxy, clients, n int, host, path string) (map[int]int, time.Duration) {
	t.Helper()
	codes := map[int]int{}
	var mu sync.Mutex
	var overflows []time.Duration
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := p.client()
			for range n {
				start := time.Now()
				code, h, _ := p.get(t, c, host, path)
				took := time.Since(start)
				mu.Lock()
				codes[code]++
				if h.Get("X-Envoy-Overloaded") == "true" {
					overflows = append(overflows, took)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(overflows) == 0 {
		return codes, 0
	}
	slices.Sort(overflows)
	return codes, overflows[len(overflows)/2]
}

func circuitBreakerDR(t *testing.T) string {
	const sample = "../../shared/istio-samples/istio.io/tasks/circuit-breaking/httpbin-destination-rule.yaml"
	if b, err := os.ReadFile(sample); err == nil {
		t.Logf("using Istio's own %s", sample)
		return string(b)
	}
	t.Logf("Istio samples not present: using testdata/httpbin-circuit-breaker.yaml")
	return "httpbin-circuit-breaker.yaml"
}

// TestCircuitBreakerIstioTask is Istio's circuit-breaking task: 3 clients
// × 30 requests trip the breaker (503 UO at once) while the rest succeed;
// one client never does.
func TestCircuitBreakerIstioTask(t *testing.T) {
	b := newBackend(t, "v1", httpbin.New().ServeHTTP)
	p := startProxy(t, 8000, serviceEntry("httpbin", 8000, "HTTP", b), circuitBreakerDR(t))
	codes, median := hammer(t, p, 3, 30, "httpbin:8000", "/get")
	t.Logf("3 clients × 30: %v; median overflow answer %s", codes, median)
	if codes[200]+codes[503] != 90 || codes[503] == 0 || codes[200] == 0 {
		t.Errorf("got %v; want some 503 overflows and the rest 200", codes)
	}
	if median > 20*time.Millisecond {
		t.Errorf("overflows took %s (median); want an immediate answer", median)
	}
	if codes, _ := hammer(t, p, 1, 30, "httpbin:8000", "/get"); codes[200] != 30 {
		t.Errorf("1 client × 30: %v; want every request 200", codes)
	}
}

func lbDR(policy string) string {
	return fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: lb}\nspec:\n  host: lb\n  trafficPolicy:\n    loadBalancer: {simple: %s}\n", policy)
}

// TestLeastRequestAvoidsSlowEndpoint compares the share of requests a slow
// endpoint gets under LEAST_REQUEST and ROUND_ROBIN.
func TestLeastRequestAvoidsSlowEndpoint(t *testing.T) {
	share := map[string]float64{}
	for _, policy := range []string{"ROUND_ROBIN", "LEAST_REQUEST"} {
		fast1, fast2 := newBackend(t, "a", nil), newBackend(t, "b", nil)
		slowB := newBackend(t, "slow", slow(30*time.Millisecond))
		p := startProxy(t, 80, serviceEntry("lb", 80, "HTTP", fast1, fast2, slowB), lbDR(policy))
		codes, _ := hammer(t, p, 6, 60, "lb", "/")
		total := fast1.hits.Load() + fast2.hits.Load() + slowB.hits.Load()
		share[policy] = 100 * float64(slowB.hits.Load()) / float64(total)
		t.Logf("%s: slow endpoint got %d of %d requests (%.1f%%); statuses %v", policy, slowB.hits.Load(), total, share[policy], codes)
	}
	if share["LEAST_REQUEST"] >= share["ROUND_ROBIN"]*0.7 {
		t.Errorf("LEAST_REQUEST sent %.1f%% to the slow endpoint, ROUND_ROBIN %.1f%%; want clearly fewer", share["LEAST_REQUEST"], share["ROUND_ROBIN"])
	}
}

func ejectDR(maxConns int) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: pool}
spec:
  host: pool
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: %d}
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
`, maxConns)
}

// TestReloadKeepsEjectionsUnderLoad ejects a failing endpoint, then
// reloads the DestinationRule five times under load: the ejection holds
// and no request fails.
func TestReloadKeepsEjectionsUnderLoad(t *testing.T) {
	a, b := newBackend(t, "a", nil), newBackend(t, "b", nil)
	bad := newBackend(t, "bad", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	p := startProxy(t, 80, serviceEntry("pool", 80, "HTTP", a, b, bad), ejectDR(1000))
	c := p.client()
	for i := 0; bad.hits.Load() < 3 && i < 200; i++ {
		p.get(t, c, "pool", "/")
	}
	if bad.hits.Load() != 3 {
		t.Fatalf("failing endpoint saw %d requests; want exactly 3 before ejection", bad.hits.Load())
	}
	var failed atomic.Int64
	var reloads sync.WaitGroup
	stop := make(chan struct{})
	reloads.Add(1)
	go func() {
		defer reloads.Done()
		for i := range 5 {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			if err := os.WriteFile(p.dir+"/01.yaml", []byte(ejectDR(500+i)), 0o644); err != nil {
				t.Error(err)
				return
			}
			p.reload(t)
		}
	}()
	codes, _ := hammer(t, p, 4, 100, "pool", "/")
	close(stop)
	reloads.Wait()
	failed.Add(int64(400 - codes[200]))
	t.Logf("400 requests across 5 reloads: %v; failing endpoint saw %d", codes, bad.hits.Load())
	if failed.Load() != 0 || bad.hits.Load() != 3 {
		t.Errorf("after ejection: %v, failing endpoint saw %d; want all 200 and still 3", codes, bad.hits.Load())
	}
	if s := clusterStatus(p, "outbound|80||pool.default.svc.cluster.local"); !strings.Contains(s, "failed_outlier_check") {
		t.Errorf("cluster status after reloads: %s; want the endpoint still ejected", s)
	}
}

func clusterStatus(p *testProxy, name string) string {
	for _, c := range p.up.Status() {
		if c.Name == name {
			return fmt.Sprintf("%+v", c.Hosts)
		}
	}
	return "no cluster " + name
}
