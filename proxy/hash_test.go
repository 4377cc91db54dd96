package proxy

import (
	"fmt"
	"strings"
	"testing"
)

func hashDR(key string) string {
	return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: h}\nspec:\n  host: h\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: " + key + "\n"
}

// TestConsistentHashThroughProxy: a header key always lands on one
// endpoint; a cookie with a ttl is generated when absent and then sticks.
func TestConsistentHashThroughProxy(t *testing.T) {
	bs := []*backend{newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil), newBackend(t, "d", nil)}
	t.Run("header", func(t *testing.T) {
		p := startProxy(t, 80, serviceEntry("h", 80, "HTTP", bs...), hashDR("{httpHeaderName: x-user}"))
		c := p.client()
		seen := map[string]bool{}
		for u := range 20 {
			user := fmt.Sprintf("user-%d", u)
			_, _, first := p.get(t, c, "h", "/", "x-user", user)
			seen[first] = true
			for range 10 {
				if _, _, got := p.get(t, c, "h", "/", "x-user", user); got != first {
					t.Fatalf("%s went to %s, then %s; want one endpoint", user, first, got)
				}
			}
		}
		if len(seen) < 2 {
			t.Errorf("20 users all hashed to %v; want them spread", seen)
		}
	})
	t.Run("cookie with ttl", func(t *testing.T) {
		p := startProxy(t, 80, serviceEntry("h", 80, "HTTP", bs...), hashDR("{httpCookie: {name: sticky, ttl: 60s}}"))
		c := p.client()
		_, h, first := p.get(t, c, "h", "/")
		ck := h.Get("Set-Cookie")
		if !strings.HasPrefix(ck, "sticky=") || !strings.Contains(ck, "Max-Age=60") {
			t.Fatalf("Set-Cookie = %q; want a generated sticky cookie with Max-Age=60", ck)
		}
		cookie := strings.SplitN(ck, ";", 2)[0]
		for range 10 {
			if _, _, got := p.get(t, c, "h", "/", "Cookie", cookie); got != first {
				t.Fatalf("with %s: %s, first %s; want the same endpoint", cookie, got, first)
			}
		}
	})
}
