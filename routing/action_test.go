package routing

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/remora-mesh/remora/fault"
)

// ruleVS wraps one http rule (YAML under "- ") for host reviews.
func ruleVS(rule string) string {
	return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n" +
		"spec:\n  hosts: [reviews]\n  http:\n  - " + rule + "\n"
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		name, rule, path, want string
	}{
		{"prefix replaces matched prefix", "{match: [{uri: {prefix: /v1/}}], rewrite: {uri: /v2/}, route: [{destination: {host: reviews}}]}", "/v1/items?q=1", "/v2/items?q=1"},
		{"prefix slash trap", "{match: [{uri: {prefix: /foo}}], rewrite: {uri: /}, route: [{destination: {host: reviews}}]}", "/foo/baz", "//baz"},
		{"exact replaces whole path", "{match: [{uri: {exact: /old}}], rewrite: {uri: /new}, route: [{destination: {host: reviews}}]}", "/old?x", "/new?x"},
		{"regex replaces whole path", "{match: [{uri: {regex: '/a/.*'}}], rewrite: {uri: /b}, route: [{destination: {host: reviews}}]}", "/a/c/d", "/b"},
		{"ignoreUriCase prefix", "{match: [{uri: {prefix: /api}, ignoreUriCase: true}], rewrite: {uri: /x}, route: [{destination: {host: reviews}}]}", "/API/1", "/x/1"},
		{"no uri match is prefix /", "{rewrite: {uri: /v2}, route: [{destination: {host: reviews}}]}", "/foo", "/v2foo"},
		{"uriRegexRewrite groups", `{rewrite: {uriRegexRewrite: {match: '^/service/([^/]+)(/.*)$', rewrite: '\2/instance/\1'}}, route: [{destination: {host: reviews}}]}`, "/service/foo/v1/api?x=1", "/v1/api/instance/foo?x=1"},
		{"uriRegexRewrite all matches", `{rewrite: {uriRegexRewrite: {match: 'a', rewrite: 'b'}}, route: [{destination: {host: reviews}}]}`, "/aXa", "/bXb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, parseVS(t, ruleVS(tt.rule)))
			res := tb.Match(get("reviews", tt.path))
			got, ok := res.RewritePath(tt.path)
			if !ok || got != tt.want {
				t.Errorf("RewritePath(%q) = %q, %v; want %q, true", tt.path, got, ok, tt.want)
			}
		})
	}
}

func TestRewriteAuthority(t *testing.T) {
	tests := []struct {
		name, rule, want string
	}{
		{"rewrite authority", "{rewrite: {authority: new.host}, route: [{destination: {host: reviews}}]}", "new.host"},
		{"header set :authority", "{headers: {request: {set: {':authority': hdr.host}}}, route: [{destination: {host: reviews}}]}", "hdr.host"},
		{"rewrite beats header", "{rewrite: {authority: rw}, headers: {request: {set: {host: hdr}}}, route: [{destination: {host: reviews}}]}", "rw"},
		{"destination-level host", "{route: [{destination: {host: reviews}, headers: {request: {set: {host: dst}}}}]}", "dst"},
		{"route beats destination", "{rewrite: {authority: rt}, route: [{destination: {host: reviews}, headers: {request: {set: {host: dst}}}}]}", "rt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, parseVS(t, ruleVS(tt.rule)))
			res := tb.Match(get("reviews", "/"))
			got, ok := res.RewriteAuthority(res.Route.Pick(0))
			if !ok || got != tt.want {
				t.Errorf("RewriteAuthority = %q, %v; want %q, true", got, ok, tt.want)
			}
		})
	}
}

func TestRedirect(t *testing.T) {
	tests := []struct {
		name, rule, authority, path string
		wantCode                    int
		wantLoc                     string
	}{
		{"uri keeps query", "{redirect: {uri: /new}}", "reviews:9080", "/old?a=1", 301, "http://reviews:9080/new?a=1"},
		{"uri with own query", "{redirect: {uri: '/new?b=2'}}", "reviews", "/old?a=1", 301, "http://reviews/new?b=2"},
		{"authority", "{redirect: {authority: other.com, redirectCode: 302}}", "reviews:9080", "/p", 302, "http://other.com/p"},
		{"port", "{redirect: {port: 8443}}", "reviews:9080", "/p", 301, "http://reviews:8443/p"},
		{"derive request port", "{redirect: {derivePort: FROM_REQUEST_PORT, authority: a.b}}", "reviews", "/p", 301, "http://a.b:9080/p"},
		{"scheme https drops :80", "{redirect: {scheme: https}}", "reviews:80", "/p", 301, "https://reviews/p"},
		{"scheme https keeps other port", "{redirect: {scheme: https}}", "reviews:9080", "/p", 301, "https://reviews:9080/p"},
		{"https 443 dropped", "{redirect: {scheme: https, port: 443}}", "reviews:9080", "/p", 301, "https://reviews/p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, parseVS(t, ruleVS(tt.rule)))
			req := get(tt.authority, tt.path)
			res := tb.Match(req)
			if res.Route == nil || res.Route.Redirect == nil {
				t.Fatalf("route %+v has no redirect", res.Route)
			}
			if got := res.Route.Redirect.Code; got != tt.wantCode {
				t.Errorf("code = %d; want %d", got, tt.wantCode)
			}
			if got := res.RedirectLocation(req); got != tt.wantLoc {
				t.Errorf("Location = %q; want %q", got, tt.wantLoc)
			}
		})
	}
}

func TestDirectResponse(t *testing.T) {
	tb := sidecar(t, parseVS(t, ruleVS("{directResponse: {status: 503, body: {string: unavailable}}}")))
	dr := tb.Match(get("reviews", "/")).Route.DirectResponse
	if dr == nil || dr.Status != 503 || string(dr.Body) != "unavailable" {
		t.Errorf("direct response = %+v; want 503 unavailable", dr)
	}
}

func TestRetryCompile(t *testing.T) {
	tests := []struct {
		name  string
		rule  string
		want  *RetryPolicy
		isNil bool
	}{
		{"default", "{route: [{destination: {host: reviews}}]}", DefaultRetryPolicy, false},
		{"attempts 0 disables", "{retries: {attempts: 0}, route: [{destination: {host: reviews}}]}", nil, true},
		{"503 numeric", "{retries: {attempts: 3, retryOn: '503,reset', perTryTimeout: 2s, backoff: 100ms, retryIgnorePreviousHosts: false}, route: [{destination: {host: reviews}}]}",
			&RetryPolicy{Attempts: 3, On: RetryReset | RetryRetriableStatusCodes, StatusCodes: []int{503}, PerTryTimeout: 2 * time.Second,
				BaseInterval: 100 * time.Millisecond, MaxInterval: time.Second, HostSelectionAttempts: 5}, false},
		{"attempts only keeps default retryOn", "{retries: {attempts: 5}, route: [{destination: {host: reviews}}]}",
			&RetryPolicy{Attempts: 5, On: DefaultRetryPolicy.On, BaseInterval: DefaultBackoff, MaxInterval: 10 * DefaultBackoff, IgnorePreviousHosts: true, HostSelectionAttempts: 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, parseVS(t, ruleVS(tt.rule)))
			got := tb.Match(get("reviews", "/")).Route.Retry
			if tt.isNil {
				if got != nil {
					t.Errorf("retry = %+v; want nil", got)
				}
				return
			}
			if got == nil || got.Attempts != tt.want.Attempts || got.On != tt.want.On || !slices.Equal(got.StatusCodes, tt.want.StatusCodes) ||
				got.PerTryTimeout != tt.want.PerTryTimeout || got.BaseInterval != tt.want.BaseInterval || got.MaxInterval != tt.want.MaxInterval ||
				got.IgnorePreviousHosts != tt.want.IgnorePreviousHosts || got.HostSelectionAttempts != tt.want.HostSelectionAttempts {
				t.Errorf("retry = %+v; want %+v", got, tt.want)
			}
		})
	}
	d := DefaultRetryPolicy
	if d.Attempts != 2 || d.On.String() != "connect-failure,refused-stream,retriable-status-codes,cancelled,unavailable" || len(d.StatusCodes) != 0 ||
		d.BaseInterval != 25*time.Millisecond || d.MaxInterval != 250*time.Millisecond || !d.IgnorePreviousHosts {
		t.Errorf("DefaultRetryPolicy = %+v (on %s)", d, d.On)
	}
}

func TestShouldRetry(t *testing.T) {
	gw := &RetryPolicy{Attempts: 1, On: RetryGatewayError}
	codes := &RetryPolicy{Attempts: 1, On: RetryReset | RetryRetriableStatusCodes, StatusCodes: []int{503}}
	tests := []struct {
		name   string
		p      *RetryPolicy
		status int
		grpc   string
		kind   FailureKind
		want   bool
	}{
		{"default connect failure", DefaultRetryPolicy, 0, "", FailureConnect, true},
		{"default refused stream", DefaultRetryPolicy, 0, "", FailureRefusedStream, true},
		{"default no 503", DefaultRetryPolicy, 503, "", FailureNone, false},
		{"default reset not retried", DefaultRetryPolicy, 0, "", FailureReset, false},
		{"default grpc unavailable", DefaultRetryPolicy, 200, "14", FailureNone, true},
		{"default grpc cancelled", DefaultRetryPolicy, 200, "1", FailureNone, true},
		{"default grpc internal", DefaultRetryPolicy, 200, "13", FailureNone, false},
		{"default per-try timeout", DefaultRetryPolicy, 0, "", FailurePerTryTimeout, false},
		{"gateway-error 502", gw, 502, "", FailureNone, true},
		{"gateway-error 500", gw, 500, "", FailureNone, false},
		{"gateway-error per-try timeout", gw, 0, "", FailurePerTryTimeout, true},
		{"codes 503", codes, 503, "", FailureNone, true},
		{"codes 502", codes, 502, "", FailureNone, false},
		{"codes reset", codes, 0, "", FailureReset, true},
		{"5xx", &RetryPolicy{On: Retry5xx}, 500, "", FailureNone, true},
		{"retriable-4xx 409", &RetryPolicy{On: RetryRetriable4xx}, 409, "", FailureNone, true},
		{"retriable-4xx 404", &RetryPolicy{On: RetryRetriable4xx}, 404, "", FailureNone, false},
		{"nil policy", nil, 503, "", FailureConnect, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.ShouldRetry(tt.status, tt.grpc, tt.kind); got != tt.want {
				t.Errorf("ShouldRetry(%d, %q, %d) = %v; want %v", tt.status, tt.grpc, tt.kind, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	p := DefaultRetryPolicy
	for n, max := range map[int]time.Duration{1: 25 * time.Millisecond, 2: 75 * time.Millisecond, 5: 250 * time.Millisecond, 40: 250 * time.Millisecond} {
		if got := p.Backoff(n, ^uint64(0)); got >= max || got < max-time.Millisecond {
			t.Errorf("Backoff(%d, max rand) = %v; want just under %v", n, got, max)
		}
		if got := p.Backoff(n, 0); got != 0 {
			t.Errorf("Backoff(%d, 0) = %v; want 0", n, got)
		}
	}
}

func TestClusterNaming(t *testing.T) {
	tests := []struct {
		name, dest string
		port       uint32
		want       string
	}{
		{"explicit port", "{host: service3, port: {number: 81}}", 80, "outbound|81||service3.default.svc.cluster.local"},
		{"only port", "{host: reviews, subset: v1}", 80, "outbound|9080|v1|reviews.default.svc.cluster.local"},
		{"multi-port uses listener", "{host: service3}", 80, "outbound|80||service3.default.svc.cluster.local"},
		{"unknown host uses listener", "{host: httpbin.org}", 80, "outbound|80||httpbin.org"},
		{"fqdn kept", "{host: api.example.com}", 80, "outbound|443||api.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: s3}\n" +
				"spec:\n  hosts: [service3]\n  http:\n  - route: [{destination: " + tt.dest + "}]\n"
			tb := sidecar(t, parseVS(t, vs))
			req := get("service3", "/")
			req.Port = tt.port
			if got := cluster(tb, req); got != tt.want {
				t.Errorf("cluster = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestWeights(t *testing.T) {
	tb := sidecar(t, parseVS(t, ruleVS("{route: [{destination: {host: reviews, subset: v1}, weight: 0}, {destination: {host: reviews, subset: v2}, weight: 1}, {destination: {host: reviews, subset: v3}, weight: 3}]}")))
	rt := tb.Match(get("reviews", "/")).Route
	var got []string
	for _, d := range rt.Destinations {
		got = append(got, d.Subset)
	}
	if !slices.Equal(got, []string{"v2", "v3"}) {
		t.Errorf("subsets = %q; want [v2 v3] (zero weight dropped)", got)
	}
	if d := rt.Pick(1<<62 - 1); d.Subset != "v2" { // just under 1/4 of the range
		t.Errorf("Pick(<1/4) = %s; want v2", d.Subset)
	}
	if d := rt.Pick(1 << 62); d.Subset != "v3" {
		t.Errorf("Pick(1/4) = %s; want v3", d.Subset)
	}
}

func TestMirrors(t *testing.T) {
	tests := []struct {
		name, rule string
		want       []uint32
	}{
		{"default 100%", "{mirror: {host: ratings}, route: [{destination: {host: reviews}}]}", []uint32{1_000_000}},
		{"percentage", "{mirror: {host: ratings}, mirrorPercentage: {value: 12.5}, route: [{destination: {host: reviews}}]}", []uint32{125_000}},
		{"explicit 0 disables", "{mirror: {host: ratings}, mirrorPercentage: {value: 0}, route: [{destination: {host: reviews}}]}", nil},
		{"legacy mirrorPercent", "{mirror: {host: ratings}, mirrorPercent: 30, route: [{destination: {host: reviews}}]}", []uint32{300_000}},
		{"mirrors list", "{mirrors: [{destination: {host: ratings}}, {destination: {host: productpage}, percentage: {value: 5}}, {destination: {host: reviews}, percentage: {value: 0}}], route: [{destination: {host: reviews}}]}", []uint32{1_000_000, 50_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, parseVS(t, ruleVS(tt.rule)))
			var got []uint32
			for _, m := range tb.Match(get("reviews", "/")).Route.Mirrors {
				got = append(got, m.PerMillion)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("mirror per-million = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestFaultCompile(t *testing.T) {
	tests := []struct {
		name, fault string
		want        fault.Policy
	}{
		{"percentage", "{delay: {fixedDelay: 5s, percentage: {value: 0.1}}}", fault.Policy{Delay: fault.Delay{Fixed: 5 * time.Second, Percent: 0.1}}},
		{"legacy percent", "{delay: {fixedDelay: 1s, percent: 20}}", fault.Policy{Delay: fault.Delay{Fixed: time.Second, Percent: 20}}},
		{"percentage beats percent", "{delay: {fixedDelay: 1s, percent: 20, percentage: {value: 50}}}", fault.Policy{Delay: fault.Delay{Fixed: time.Second, Percent: 50}}},
		{"no percentage never fires", "{abort: {httpStatus: 503}}", fault.Policy{Abort: fault.Abort{HTTPStatus: 503}}},
		{"grpc status", "{abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}", fault.Policy{Abort: fault.Abort{GRPCStatus: 14, HasGRPCStatus: true, Percent: 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, parseVS(t, ruleVS("{fault: "+tt.fault+", route: [{destination: {host: reviews}}]}")))
			if got := tb.Match(get("reviews", "/")).Route.Fault; got == nil || *got != tt.want {
				t.Errorf("fault = %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestHeaderOps(t *testing.T) {
	rule := "{headers: {request: {set: {x-b: '2', x-a: '1'}, add: {x-c: '3'}, remove: [x-drop]}, response: {set: {x-r: r}}}, " +
		"route: [{destination: {host: reviews}, headers: {request: {set: {x-a: dest, x-d: d}}}}]}"
	tb := sidecar(t, parseVS(t, ruleVS(rule)))
	res := tb.Match(get("reviews", "/"))
	h := http.Header{"X-Drop": {"x"}, "X-C": {"0"}}
	res.ApplyRequestHeaders(res.Route.Pick(0), h)
	want := http.Header{"X-A": {"1"}, "X-B": {"2"}, "X-C": {"0", "3"}, "X-D": {"d"}}
	if len(h) != len(want) {
		t.Fatalf("headers = %v; want %v", h, want)
	}
	for k, v := range want {
		if !slices.Equal(h[k], v) {
			t.Errorf("%s = %q; want %q", k, h[k], v)
		}
	}
	if got := res.Route.RequestHeaders.Set; got[0].Name != "X-A" || got[1].Name != "X-B" {
		t.Errorf("set = %v; want sorted by name", got)
	}
	rh := http.Header{}
	res.ApplyResponseHeaders(nil, rh)
	if rh.Get("X-R") != "r" {
		t.Errorf("response headers = %v; want X-R: r", rh)
	}
}

func TestCORS(t *testing.T) {
	rule := "{corsPolicy: {allowOrigins: [{exact: 'https://a.com'}, {regex: 'https://.*\\.b\\.com'}], allowMethods: [GET, POST], " +
		"allowHeaders: [x-h], exposeHeaders: [x-e], maxAge: 24h, allowCredentials: true}, route: [{destination: {host: reviews}}]}"
	tb := sidecar(t, parseVS(t, ruleVS(rule)))
	c := tb.Match(get("reviews", "/")).Route.CORS
	for origin, want := range map[string]bool{"https://a.com": true, "https://x.b.com": true, "https://b.com": false, "http://a.com": false, "": false} {
		if got := c.AllowsOrigin(origin); got != want {
			t.Errorf("AllowsOrigin(%q) = %v; want %v", origin, got, want)
		}
	}
	req := get("reviews", "/", "Origin", "https://a.com", "Access-Control-Request-Method", "POST")
	req.Method = "OPTIONS"
	if !IsPreflight(req) {
		t.Errorf("IsPreflight = false; want true")
	}
	h := http.Header{}
	c.PreflightHeaders("https://a.com", h)
	want := map[string]string{"Access-Control-Allow-Origin": "https://a.com", "Access-Control-Allow-Methods": "GET,POST",
		"Access-Control-Allow-Headers": "x-h", "Access-Control-Max-Age": "86400", "Access-Control-Allow-Credentials": "true"}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q; want %q", k, got, v)
		}
	}
	if !c.ForwardUnmatchedPreflights {
		t.Errorf("ForwardUnmatchedPreflights = false; want true by default")
	}
}

func TestRouteName(t *testing.T) {
	tb := sidecar(t, parseVS(t, ruleVS("{name: rule, match: [{name: m1, uri: {prefix: /a}}, {uri: {prefix: /b}}], route: [{destination: {host: reviews}}]}")))
	for path, want := range map[string]string{"/a": "rule.m1", "/b": "rule"} {
		if got := tb.Match(get("reviews", path)).Name; got != want {
			t.Errorf("Name for %s = %q; want %q", path, got, want)
		}
	}
}
