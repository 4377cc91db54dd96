package routing

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remora-mesh/remora/fault"
)

const (
	reviewsV1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
	reviewsV2 = "outbound|9080|v2|reviews.default.svc.cluster.local"
	reviewsV3 = "outbound|9080|v3|reviews.default.svc.cluster.local"
)

// TestReviews9010 draws 5000 deterministic requests; v1 must get 90% and
// v2 10%, each within ±2 points.
func TestReviews9010(t *testing.T) {
	tb := sidecar(t, loadVS(t, "reviews-90-10.yaml"))
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 5000
	counts := map[string]int{}
	for range n {
		res := tb.Match(get("reviews", "/reviews/1"))
		counts[res.Route.Pick(rng.Uint64()).Cluster]++
	}
	for c, want := range map[string]float64{reviewsV1: 90, reviewsV2: 10} {
		got := float64(counts[c]) * 100 / n
		if got < want-2 || got > want+2 {
			t.Errorf("%s got %.1f%% of %d requests; want %.0f%% ± 2", c, got, n, want)
		}
	}
}

func TestBookinfoHeaderRouting(t *testing.T) {
	tests := []struct {
		name, file string
		user       string
		want       string
	}{
		{"test-v2 jason", "reviews-test-v2.yaml", "jason", reviewsV2},
		{"test-v2 other", "reviews-test-v2.yaml", "alice", reviewsV1},
		{"test-v2 anonymous", "reviews-test-v2.yaml", "", reviewsV1},
		{"jason-v2-v3 jason", "reviews-jason-v2-v3.yaml", "jason", reviewsV2},
		{"jason-v2-v3 other", "reviews-jason-v2-v3.yaml", "bob", reviewsV3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, loadVS(t, tt.file))
			req := get("reviews:9080", "/reviews/0")
			if tt.user != "" {
				req.Header.Set("End-User", tt.user)
			}
			if got := cluster(tb, req); got != tt.want {
				t.Errorf("cluster = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestBookinfoFaults(t *testing.T) {
	tests := []struct {
		name, file string
		user       string
		want       *fault.Policy
	}{
		{"abort jason", "ratings-test-abort.yaml", "jason", &fault.Policy{Abort: fault.Abort{HTTPStatus: 500, Percent: 100}}},
		{"abort other", "ratings-test-abort.yaml", "bob", nil},
		{"delay jason", "ratings-test-delay.yaml", "jason", &fault.Policy{Delay: fault.Delay{Fixed: 7 * time.Second, Percent: 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, loadVS(t, tt.file))
			res := tb.Match(get("ratings", "/ratings/0", "End-User", tt.user))
			if res.Outcome != Matched {
				t.Fatalf("outcome %v; want Matched", res.Outcome)
			}
			got := res.Route.Fault
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("fault = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestCookieRegex(t *testing.T) {
	tb := sidecar(t, loadVS(t, "cookie-regex.yaml"))
	tests := []struct {
		name, cookie, path, want string
	}{
		{"only jason", "user=jason", "/", "outbound|81||service3.default.svc.cluster.local"},
		{"jason among others", "a=1;user=jason;b=2", "/", "outbound|81||service3.default.svc.cluster.local"},
		{"other user falls to prefix", "user=jasonx", "/reviews/1", "outbound|81|v1|service3.default.svc.cluster.local"},
		{"no rule", "user=bob", "/", "NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := get("service3", tt.path, "Cookie", tt.cookie)
			req.Port = 80
			if got := cluster(tb, req); got != tt.want {
				t.Errorf("cluster = %q; want %q", got, tt.want)
			}
		})
	}
	// The weighted rule resolves the unported v2 destination to the
	// listener port, as service3 has two ports.
	res := tb.Match(&Request{Authority: "service3", Path: "/reviews/", Port: 80})
	var got []string
	for _, d := range res.Route.Destinations {
		got = append(got, d.Cluster)
	}
	want := []string{"outbound|81|v1|service3.default.svc.cluster.local", "outbound|80|v2|service3.default.svc.cluster.local"}
	if !slices.Equal(got, want) {
		t.Errorf("destinations = %q; want %q", got, want)
	}
}

const twoRules = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %s}
spec:
  hosts: [%s]
  gateways: [%s]
  http:
  - route: [{destination: {host: reviews, subset: %s}}]
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: never}}]
`

// fill substitutes the %s placeholders of twoRules in order.
func fill(args ...string) string {
	s := twoRules
	for _, a := range args {
		s = strings.Replace(s, "%s", a, 1)
	}
	return s
}

func TestCatchAllDropsLaterRules(t *testing.T) {
	tb := sidecar(t, parseVS(t, fill("a", "reviews", "mesh", "v1")))
	v := tb.VirtualHost(9080, "reviews")
	if got := len(v.Routes()); got != 1 {
		t.Errorf("routes after catch-all = %d; want 1", got)
	}
	if got := cluster(tb, get("reviews", "/", "End-User", "jason")); got != reviewsV1 {
		t.Errorf("cluster = %q; want %q", got, reviewsV1)
	}
}

func TestSidecarFirstVirtualServiceWins(t *testing.T) {
	vss := parseVS(t, fill("first", "reviews", "mesh", "v1")+"---\n"+fill("second", "reviews.default.svc.cluster.local", "mesh", "v2"))
	tb, warns := Compile(vss, Context{Services: registry})
	if got := cluster(tb, get("reviews", "/")); got != reviewsV1 {
		t.Errorf("cluster = %q; want %q", got, reviewsV1)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "default/second") {
		t.Errorf("warnings = %q; want one naming VirtualService/default/second", warns)
	}
}

const gatewayVS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: catchall}
spec:
  hosts: [bookinfo.com]
  gateways: [bookinfo-gateway]
  http:
  - route: [{destination: {host: productpage, port: {number: 9080}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [bookinfo.com]
  gateways: [default/bookinfo-gateway]
  http:
  - match: [{uri: {prefix: /api}}]
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: star}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /star}}]
    route: [{destination: {host: ratings}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mesh-only}
spec:
  hosts: [other.com]
  http:
  - route: [{destination: {host: ratings}}]
`

func TestGatewayMerge(t *testing.T) {
	tb, warns := Compile(parseVS(t, gatewayVS), Context{Gateways: []string{"default/bookinfo-gateway"}, Services: registry, Ports: []uint32{8080}})
	if len(warns) > 0 {
		t.Errorf("warnings = %q; want none", warns)
	}
	tests := []struct {
		name, host, path, want string
	}{
		{"merged rule before catch-all", "bookinfo.com", "/api/x", "outbound|9080||reviews.default.svc.cluster.local"},
		{"catch-all last", "bookinfo.com", "/", "outbound|9080||productpage.default.svc.cluster.local"},
		{"star vhost", "unknown.org", "/star", "outbound|9080||ratings.default.svc.cluster.local"},
		{"star vhost no rule", "unknown.org", "/", "NotFound"},
		{"mesh-only VS not on gateway", "other.com", "/", "NotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := get(tt.host, tt.path)
			req.Port = 8080
			if got := cluster(tb, req); got != tt.want {
				t.Errorf("cluster = %q; want %q", got, tt.want)
			}
		})
	}
}

const hostsVS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild}
spec:
  hosts: ["*.example.com"]
  http:
  - route: [{destination: {host: ratings}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild-deep}
spec:
  hosts: ["*.eu.example.com"]
  http:
  - route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: external}
spec:
  hosts: [httpbin.org]
  http:
  - route: [{destination: {host: httpbin.org}}]
`

func TestVirtualHostSelection(t *testing.T) {
	tb := sidecar(t, parseVS(t, hostsVS))
	rv := "outbound|9080||reviews.default.svc.cluster.local"
	ra := "outbound|9080||ratings.default.svc.cluster.local"
	tests := []struct {
		name, host string
		port       uint32
		want       string
	}{
		{"fqdn", "reviews.default.svc.cluster.local", 9080, rv},
		{"short", "reviews", 9080, rv},
		{"short with port", "reviews:9080", 9080, rv},
		{"ns", "reviews.default", 9080, rv},
		{"svc", "reviews.default.svc", 9080, rv},
		{"svc.cluster", "reviews.default.svc.cluster", 9080, rv},
		{"upper case", "Reviews.Default.SVC.cluster.local", 9080, rv},
		{"vip", "10.0.0.1", 9080, rv},
		{"vip with port", "10.0.0.1:9080", 9080, rv},
		{"wrong port", "reviews", 8080, "UnknownHost"},
		{"unknown host", "nowhere.local", 9080, "UnknownHost"},
		// ratings and reviews have one port: destinations use it.
		{"wildcard", "a.example.com", 80, ra},
		{"longest wildcard", "a.eu.example.com", 80, rv},
		{"wildcard needs label", "example.com", 80, "UnknownHost"},
		{"wildcard deeper", "x.y.example.com", 80, ra},
		{"external on 80", "httpbin.org", 80, "outbound|80||httpbin.org"},
		{"external not on 9080", "httpbin.org", 9080, "UnknownHost"},
		{"registry default other port", "service3:81", 81, "outbound|81||service3.default.svc.cluster.local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := get(tt.host, "/")
			req.Port = tt.port
			if got := cluster(tb, req); got != tt.want {
				t.Errorf("cluster(%s on %d) = %q; want %q", tt.host, tt.port, got, tt.want)
			}
		})
	}
}

func TestDefaultRoute(t *testing.T) {
	tb := sidecar(t, nil)
	res := tb.Match(get("productpage", "/anything"))
	if res.Outcome != Matched || res.Route.Name != "default" || res.Route.Retry != DefaultRetryPolicy || res.Route.Timeout != 0 {
		t.Errorf("default route = %+v; want name default, default retries, no timeout", res.Route)
	}
}

func TestAliasesOtherNamespace(t *testing.T) {
	tb, _ := Compile(nil, Context{Namespace: "prod", Services: registry})
	tests := []struct {
		host string
		want bool
	}{
		{"reviews", false},
		{"reviews.default", true},
		{"reviews.default.svc", true},
		{"reviews.default.svc.cluster", true},
		{"reviews.default.svc.cluster.local", true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := tb.Match(get(tt.host, "/")).Outcome == Matched; got != tt.want {
				t.Errorf("Match(%s) from prod matched = %v; want %v", tt.host, got, tt.want)
			}
		})
	}
}

// A wildcard VirtualService claims the registry hosts it covers, with
// their aliases, unless an exact host claimed them first.
func TestWildcardClaimsRegistryHosts(t *testing.T) {
	vs := `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild-svc}
spec:
  hosts: ["*.default.svc.cluster.local"]
  http:
  - route: [{destination: {host: productpage}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v3}}]
`
	tb := sidecar(t, parseVS(t, vs))
	pp := "outbound|9080||productpage.default.svc.cluster.local"
	for host, want := range map[string]string{"ratings": pp, "ratings.default.svc.cluster.local": pp, "reviews": reviewsV3, "anything.default.svc.cluster.local": pp} {
		if got := cluster(tb, get(host, "/")); got != want {
			t.Errorf("cluster(%s) = %q; want %q", host, got, want)
		}
	}
}
