package proxy

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flaky fails every other request of each client (X-Client header) with
// 503: exactly 50% of requests fail, and a retry always succeeds, however
// the clients' requests interleave.
func flaky() http.HandlerFunc {
	var mu sync.Mutex
	seen := map[string]int{}
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Client")]++
		n := seen[r.Header.Get("X-Client")]
		mu.Unlock()
		if n%2 == 1 {
			http.Error(w, "flaky", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}
}

func vsFor(host, extra string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: vs
spec:
  hosts: [%s]
  http:
  - route:
    - destination: {host: %s}
%s`, host, host, extra)
}

// countOK sends n requests from 8 concurrent clients (retries wait a
// jittered back-off of up to 25ms each) and counts 200s and 503s.
func countOK(t *testing.T, p *testProxy, n int) (ok, s503 int) {
	t.Helper()
	c := p.client()
	var okN, n503 atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				code, _, _ := p.get(t, c, "flaky:8000", "/", "X-Client", strconv.Itoa(w))
				switch code {
				case 200:
					okN.Add(1)
				case 503:
					n503.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(okN.Load()), int(n503.Load())
}

func TestRetryOn5xx(t *testing.T) {
	b := newBackend(t, "v1", flaky())
	p := startProxy(t, 8000, serviceEntry("flaky", 8000, "HTTP", b), vsFor("flaky", "    retries: {attempts: 3, retryOn: 5xx}\n"))
	const n = 2000
	ok, _ := countOK(t, p, n)
	t.Logf("attempts 3, retryOn 5xx: %d/%d succeeded, backend saw %d", ok, n, b.hits.Load())
	if float64(ok) < 0.99*n {
		t.Errorf("%d of %d succeeded; want over 99%%", ok, n)
	}
}

func TestDefaultRetryPolicyDoesNotRetry503(t *testing.T) {
	b := newBackend(t, "v1", flaky())
	p := startProxy(t, 8000, serviceEntry("flaky", 8000, "HTTP", b))
	ok, s503 := countOK(t, p, 240) // 30 per client: 15 fail, 15 succeed
	if ok != 120 || s503 != 120 || b.hits.Load() != 240 {
		t.Errorf("default policy: %d ok, %d 503, backend saw %d; want 120, 120, 240 (no retry of 503)", ok, s503, b.hits.Load())
	}
}

func slow(d time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		w.Write([]byte("late"))
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name, extra string
		want        time.Duration
		wantHits    int64
	}{
		{"route timeout", "    timeout: 300ms\n", 300 * time.Millisecond, 1},
		{"per-try timeout", "    timeout: 2s\n    retries: {attempts: 2, perTryTimeout: 150ms, retryOn: 5xx}\n", 450 * time.Millisecond, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, "v1", slow(3*time.Second))
			p := startProxy(t, 8000, serviceEntry("slow", 8000, "HTTP", b), vsFor("slow", tt.extra))
			start := time.Now()
			code, _, body := p.get(t, p.client(), "slow:8000", "/")
			took := time.Since(start)
			if code != 504 || body != "upstream request timeout" {
				t.Errorf("got %d %q; want 504 \"upstream request timeout\"", code, body)
			}
			// per-try: 3 tries of 150ms plus back-off (at most 25ms and 75ms).
			slack := 50 * time.Millisecond
			if tt.wantHits > 1 {
				slack += 100 * time.Millisecond
			}
			if took < tt.want || took > tt.want+slack {
				t.Errorf("answered after %s; want %s (+%s)", took, tt.want, slack)
			}
			if got := b.hits.Load(); got != tt.wantHits {
				t.Errorf("backend saw %d attempts; want %d", got, tt.wantHits)
			}
		})
	}
}
