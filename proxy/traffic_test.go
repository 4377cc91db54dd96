package proxy

import (
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// reviews starts backends v1, v2, v3 and a proxy for reviews:9080 with
// the reviews subsets and the given VirtualService files.
func reviews(t *testing.T, vs ...string) (*testProxy, map[string]*backend) {
	t.Helper()
	bs := map[string]*backend{}
	for _, v := range []string{"v1", "v2", "v3"} {
		bs[v] = newBackend(t, v, nil)
	}
	docs := append([]string{serviceEntry("reviews", 9080, "HTTP", bs["v1"], bs["v2"], bs["v3"]), "reviews-dr.yaml"}, vs...)
	return startProxy(t, 9080, docs...), bs
}

// share runs n requests with the headers and returns the share of each
// backend's answers, in percent.
func share(t *testing.T, p *testProxy, n int, hdr ...string) map[string]float64 {
	t.Helper()
	c := p.client()
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan struct{}, n)
	for range n {
		work <- struct{}{}
	}
	close(work)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				code, _, body := p.get(t, c, "reviews:9080", "/reviews/1", hdr...)
				mu.Lock()
				if code != 200 {
					counts["status "+http.StatusText(code)]++
				} else {
					counts[body]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	out := map[string]float64{}
	for k, v := range counts {
		out[k] = 100 * float64(v) / float64(n)
	}
	return out
}

func TestWeightedSplit90_10(t *testing.T) {
	p, _ := reviews(t, "reviews-90-10.yaml")
	const n = 5000
	got := share(t, p, n)
	t.Logf("reviews-90-10 over %d requests: %v", n, got)
	if math.Abs(got["v1"]-90) > 2 || math.Abs(got["v2"]-10) > 2 || len(got) != 2 {
		t.Errorf("split = %v; want v1 90%%, v2 10%% (±2 points)", got)
	}
}

func TestHeaderRouting(t *testing.T) {
	p, _ := reviews(t, "reviews-test-v2.yaml")
	if got := share(t, p, 200, "end-user", "jason"); got["v2"] != 100 {
		t.Errorf("jason: %v; want all v2", got)
	}
	if got := share(t, p, 200); got["v1"] != 100 {
		t.Errorf("anonymous: %v; want all v1", got)
	}
}

func TestFaultDelayOnlyJason(t *testing.T) {
	p, _ := reviews(t, "ratings-test-delay.yaml")
	c := p.client()
	start := time.Now()
	code, _, _ := p.get(t, c, "reviews:9080", "/", "end-user", "jason")
	jason := time.Since(start)
	start = time.Now()
	p.get(t, c, "reviews:9080", "/")
	other := time.Since(start)
	if code != 200 || jason < 700*time.Millisecond || jason > 950*time.Millisecond {
		t.Errorf("jason: status %d after %s; want 200 after 700ms", code, jason)
	}
	if other > 200*time.Millisecond {
		t.Errorf("anonymous request took %s; want no delay", other)
	}
}

func TestFaultAbortOnlyJason(t *testing.T) {
	p, bs := reviews(t, "ratings-test-abort.yaml")
	c := p.client()
	code, h, body := p.get(t, c, "reviews:9080", "/", "end-user", "jason")
	if code != 500 || body != "fault filter abort" || h.Get("Content-Type") != "text/plain" {
		t.Errorf("jason: %d %q %q; want 500 \"fault filter abort\" text/plain", code, body, h.Get("Content-Type"))
	}
	if n := bs["v1"].hits.Load(); n != 0 {
		t.Errorf("aborted request reached the backend (%d hits)", n)
	}
	if code, _, body := p.get(t, c, "reviews:9080", "/"); code != 200 || body != "v1" {
		t.Errorf("anonymous: %d %q; want 200 v1", code, body)
	}
}

func TestCookieRegexAbortHalf(t *testing.T) {
	p, _ := reviews(t, "cookie-abort.yaml")
	const n = 4000
	got := share(t, p, n, "Cookie", "session=abc;user=jason;theme=dark")
	t.Logf("cookie user=jason over %d requests: %v", n, got)
	if math.Abs(got["v2"]-50) > 3 || math.Abs(got["status Service Unavailable"]-50) > 3 {
		t.Errorf("got %v; want 50%% v2 and 50%% 503 (±3 points)", got)
	}
	if got := share(t, p, 100, "Cookie", "user=jasonx"); got["v1"] != 100 {
		t.Errorf("user=jasonx: %v; want all v1 (full-match regex)", got)
	}
}

func TestNoRouteAndNoCluster(t *testing.T) {
	p, _ := reviews(t, strings.Replace(vsMatchOnly, "SUBSET", "v9", 1))
	c := p.client()
	if code, _, body := p.get(t, c, "reviews:9080", "/nothing"); code != 404 || body != "" {
		t.Errorf("unmatched path: %d %q; want 404 with empty body (NR)", code, body)
	}
	if code, _, body := p.get(t, c, "reviews:9080", "/api"); code != 503 || body != "" {
		t.Errorf("missing subset: %d %q; want 503 with empty body (NC)", code, body)
	}
}

const vsMatchOnly = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {prefix: /api}
    route:
    - destination: {host: reviews, subset: SUBSET}
`
