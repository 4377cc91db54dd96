package proxy

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const bookinfo = "../../shared/istio-samples/samples/bookinfo/networking"

// sample reads an official Istio sample file, or skips the test when the
// samples are not beside the checkout (a user's clone).
func sample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bookinfo, name))
	if err != nil {
		t.Skipf("Istio samples not present at %s (only in the project's own checkouts): conformance not checked", bookinfo)
	}
	return string(b)
}

// TestBookinfoSamples runs Istio's own bookinfo VirtualServices and
// DestinationRules through remora, with ServiceEntries for the demo
// endpoints, and checks what Istio's docs say they do.
func TestBookinfoSamples(t *testing.T) {
	dr := sample(t, "destination-rule-all.yaml")
	t.Run("reviews-90-10", func(t *testing.T) {
		t.Parallel()
		p, _ := reviewsWith(t, dr, sample(t, "virtual-service-reviews-90-10.yaml"))
		got := share(t, p, 5000)
		t.Logf("virtual-service-reviews-90-10.yaml over 5000 requests: %v", got)
		if math.Abs(got["v1"]-90) > 2 || math.Abs(got["v2"]-10) > 2 {
			t.Errorf("split %v; want 90/10 (±2 points)", got)
		}
	})
	t.Run("reviews-test-v2", func(t *testing.T) {
		t.Parallel()
		p, _ := reviewsWith(t, dr, sample(t, "virtual-service-reviews-test-v2.yaml"))
		if got := share(t, p, 100, "end-user", "jason"); got["v2"] != 100 {
			t.Errorf("jason: %v; want all v2", got)
		}
		if got := share(t, p, 100); got["v1"] != 100 {
			t.Errorf("others: %v; want all v1", got)
		}
	})
	t.Run("ratings-test-abort", func(t *testing.T) {
		t.Parallel()
		p := ratingsWith(t, dr, sample(t, "virtual-service-ratings-test-abort.yaml"))
		c := p.client()
		if code, _, body := p.get(t, c, "ratings:9080", "/ratings/0", "end-user", "jason"); code != 500 || body != "fault filter abort" {
			t.Errorf("jason: %d %q; want 500 fault filter abort", code, body)
		}
		if code, _, body := p.get(t, c, "ratings:9080", "/ratings/0"); code != 200 || body != "v1" {
			t.Errorf("others: %d %q; want 200 from v1", code, body)
		}
	})
	t.Run("ratings-test-delay", func(t *testing.T) {
		t.Parallel()
		p := ratingsWith(t, dr, sample(t, "virtual-service-ratings-test-delay.yaml"))
		c := p.client()
		start := time.Now()
		code, _, _ := p.get(t, c, "ratings:9080", "/ratings/0", "end-user", "jason")
		if took := time.Since(start); code != 200 || took < 7*time.Second || took > 8*time.Second {
			t.Errorf("jason: %d after %s; want 200 after the sample's 7s delay", code, took)
		}
		start = time.Now()
		if code, _, _ := p.get(t, c, "ratings:9080", "/ratings/0"); code != 200 || time.Since(start) > 300*time.Millisecond {
			t.Errorf("others: %d after %s; want 200 at once", code, time.Since(start))
		}
	})
}

func reviewsWith(t *testing.T, docs ...string) (*testProxy, map[string]*backend) {
	t.Helper()
	bs := map[string]*backend{}
	for _, v := range []string{"v1", "v2", "v3"} {
		bs[v] = newBackend(t, v, nil)
	}
	return startProxy(t, 9080, append([]string{serviceEntry("reviews", 9080, "HTTP", bs["v1"], bs["v2"], bs["v3"])}, docs...)...), bs
}

func ratingsWith(t *testing.T, docs ...string) *testProxy {
	t.Helper()
	v1 := newBackend(t, "v1", nil)
	return startProxy(t, 9080, append([]string{serviceEntry("ratings", 9080, "HTTP", v1)}, docs...)...)
}
