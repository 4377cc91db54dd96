package routing

import (
	"net/http"
	"testing"
)

// BenchmarkHeaderOpsApply is a route's request header operations (two
// sets, one add, one remove) applied to a typical request's headers.
func BenchmarkHeaderOpsApply(b *testing.B) {
	ops := &HeaderOps{
		Set:    []Header{{"X-Route", "reviews-v2"}, {"X-Envoy-Decorator", "reviews"}},
		Add:    []Header{{"X-Trace", "on"}},
		Remove: []string{"X-Internal"},
	}
	base := http.Header{
		"User-Agent": {"fortio"}, "Accept": {"*/*"}, "X-Request-Id": {"0f6c2c7e-4b5b-4b8e-9d1e-6f7d1c2a3b4c"},
		"X-Internal": {"1"},
	}
	h := make(http.Header, 8)
	b.ReportAllocs()
	for b.Loop() {
		clear(h)
		for k, v := range base {
			h[k] = v
		}
		ops.Apply(h)
	}
}
