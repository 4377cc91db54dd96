package routing

import (
	"strings"
	"testing"
)

// matchVS wraps one match block in a VirtualService for reviews.
func matchVS(block string) string {
	var b strings.Builder
	b.WriteString("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n")
	b.WriteString("spec:\n  hosts: [reviews]\n  http:\n  - match:\n")
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		b.WriteString("    " + l + "\n")
	}
	b.WriteString("    route:\n    - destination: {host: reviews, subset: v2}\n")
	return b.String()
}

func TestMatchConditions(t *testing.T) {
	tests := []struct {
		name  string
		match string
		req   *Request
		want  bool
	}{
		{"uri exact", "- uri: {exact: /api}", get("reviews", "/api"), true},
		{"uri exact ignores query", "- uri: {exact: /api}", get("reviews", "/api?x=1"), true},
		{"uri exact longer path", "- uri: {exact: /api}", get("reviews", "/api/v1"), false},
		{"uri exact case", "- uri: {exact: /api}", get("reviews", "/API"), false},
		{"uri exact ignoreUriCase", "- uri: {exact: /api}\n  ignoreUriCase: true", get("reviews", "/API"), true},
		{"uri prefix", "- uri: {prefix: /api}", get("reviews", "/apiv2/x"), true},
		{"uri prefix other", "- uri: {prefix: /api}", get("reviews", "/status"), false},
		{"uri prefix case", "- uri: {prefix: /api}", get("reviews", "/Api/x"), false},
		{"uri prefix ignoreUriCase", "- uri: {prefix: /api}\n  ignoreUriCase: true", get("reviews", "/Api/x"), true},
		{"uri prefix not in query", "- uri: {prefix: /a/b}", get("reviews", "/a?/b"), false},
		{"uri regex full", `- uri: {regex: '/api/\d+'}`, get("reviews", "/api/12"), true},
		{"uri regex not search", `- uri: {regex: '/api/\d+'}`, get("reviews", "/api/12x"), false},
		{"uri regex not suffix", `- uri: {regex: '\d+'}`, get("reviews", "/a123"), false},
		{"uri regex ignoreUriCase no effect", "- uri: {regex: /api}\n  ignoreUriCase: true", get("reviews", "/API"), false},
		{"uri regex ignores query", `- uri: {regex: '/api/\d+'}`, get("reviews", "/api/1?q=a"), true},
		{"scheme", "- scheme: {exact: http}", get("reviews", "/"), true},
		{"scheme other", "- scheme: {exact: https}", get("reviews", "/"), false},
		{"method", "- method: {exact: GET}", get("reviews", "/"), true},
		{"method other", "- method: {exact: POST}", get("reviews", "/"), false},
		{"authority with port", "- authority: {exact: 'reviews:9080'}", get("reviews:9080", "/"), true},
		{"authority prefix", "- authority: {prefix: rev}", get("reviews", "/"), true},
		{"authority regex", "- authority: {regex: 'ratings.*'}", get("reviews", "/"), false},
		{"header exact", "- headers: {end-user: {exact: jason}}", get("reviews", "/", "End-User", "jason"), true},
		{"header exact case-sensitive", "- headers: {end-user: {exact: jason}}", get("reviews", "/", "End-User", "Jason"), false},
		{"header missing", "- headers: {end-user: {exact: jason}}", get("reviews", "/"), false},
		{"header prefix", "- headers: {x-v: {prefix: v1}}", get("reviews", "/", "X-V", "v1.2"), true},
		{"header prefix other", "- headers: {x-v: {prefix: v1}}", get("reviews", "/", "X-V", "v2"), false},
		{"header regex full", "- headers: {x-v: {regex: 'v[0-9]'}}", get("reviews", "/", "X-V", "v7"), true},
		{"header regex not search", "- headers: {x-v: {regex: 'v[0-9]'}}", get("reviews", "/", "X-V", "v77"), false},
		{"header present", "- headers: {x-v: {}}", get("reviews", "/", "X-V", ""), true},
		{"header present missing", "- headers: {x-v: {}}", get("reviews", "/"), false},
		{"header multiple values joined", "- headers: {x-v: {exact: 'a,b'}}", get("reviews", "/", "X-V", "a", "X-V", "b"), true},
		{"header name upper in config", "- headers: {X-Upper: {exact: y}}", get("reviews", "/", "X-Upper", "y"), true},
		{"headers AND", "- headers: {a: {exact: '1'}, b: {exact: '2'}}", get("reviews", "/", "A", "1"), false},
		{"headers AND all", "- headers: {a: {exact: '1'}, b: {exact: '2'}}", get("reviews", "/", "A", "1", "B", "2"), true},
		{"withoutHeaders absent", "- withoutHeaders: {x-v: {exact: a}}", get("reviews", "/"), true},
		{"withoutHeaders mismatch", "- withoutHeaders: {x-v: {exact: a}}", get("reviews", "/", "X-V", "b"), true},
		{"withoutHeaders match", "- withoutHeaders: {x-v: {exact: a}}", get("reviews", "/", "X-V", "a"), false},
		{"withoutHeaders presence absent", "- withoutHeaders: {x-v: {}}", get("reviews", "/"), true},
		{"withoutHeaders presence present", "- withoutHeaders: {x-v: {}}", get("reviews", "/", "X-V", "z"), false},
		{"query exact", "- queryParams: {v: {exact: '1'}}", get("reviews", "/p?a=b&v=1"), true},
		{"query exact other", "- queryParams: {v: {exact: '1'}}", get("reviews", "/p?v=2"), false},
		{"query missing", "- queryParams: {v: {exact: '1'}}", get("reviews", "/p"), false},
		{"query regex full", `- queryParams: {id: {regex: '\d+'}}`, get("reviews", "/p?id=123"), true},
		{"query regex not search", `- queryParams: {id: {regex: '\d+$'}}`, get("reviews", "/p?id=a123"), false},
		{"query present", "- queryParams: {v: {}}", get("reviews", "/p?v"), true},
		{"query exact empty bare key", "- queryParams: {v: {exact: ''}}", get("reviews", "/p?v"), true},
		{"query exact empty with =", "- queryParams: {v: {exact: ''}}", get("reviews", "/p?v="), true},
		{"query prefix", "- queryParams: {v: {prefix: ab}}", get("reviews", "/p?v=abc"), true},
		{"query percent-decoded", "- queryParams: {v: {exact: 'a b'}}", get("reviews", "/p?v=a%20b"), true},
		{"blocks OR first", "- uri: {prefix: /a}\n- uri: {prefix: /b}", get("reviews", "/a1"), true},
		{"blocks OR second", "- uri: {prefix: /a}\n- uri: {prefix: /b}", get("reviews", "/b1"), true},
		{"blocks OR none", "- uri: {prefix: /a}\n- uri: {prefix: /b}", get("reviews", "/c"), false},
		{"block AND uri and header", "- uri: {prefix: /a}\n  headers: {x: {exact: '1'}}", get("reviews", "/a", "X", "2"), false},
		{"port same listener", "- port: 9080", get("reviews", "/"), true},
		{"port other listener", "- port: 8080\n  uri: {prefix: /}", get("reviews", "/"), false},
		{"sourceLabels subset", "- sourceLabels: {app: productpage}", get("reviews", "/"), true},
		{"sourceLabels other", "- sourceLabels: {app: reviews}\n  uri: {prefix: /}", get("reviews", "/"), false},
		{"sourceNamespace same", "- sourceNamespace: default", get("reviews", "/"), true},
		{"sourceNamespace other", "- sourceNamespace: prod\n  uri: {prefix: /}", get("reviews", "/"), false},
		{"match gateways mesh", "- gateways: [mesh]", get("reviews", "/"), true},
		{"match gateways other", "- gateways: [ingress]\n  uri: {prefix: /}", get("reviews", "/"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := sidecar(t, parseVS(t, matchVS(tt.match)))
			res := tb.Match(tt.req)
			// A host whose rules are all filtered out keeps its default
			// route, so "matched" means matched by the VirtualService.
			got := res.Outcome == Matched && res.Route.VirtualService != ""
			if got != tt.want {
				t.Errorf("Match(%s %s %v) outcome %v, route %+v; want matched by VS=%v", tt.req.Authority, tt.req.Path, tt.req.Header, res.Outcome, res.Route, tt.want)
			}
		})
	}
}

// A rule whose match blocks are all filtered out at build time does not
// become a catch-all, and with no rule left the host keeps its default.
func TestFilteredRuleIsNotCatchAll(t *testing.T) {
	tb := sidecar(t, parseVS(t, matchVS("- port: 8080")))
	if got, want := cluster(tb, get("reviews", "/")), "outbound|9080||reviews.default.svc.cluster.local"; got != want {
		t.Errorf("cluster = %q; want %q (default route)", got, want)
	}
}

func TestQueryValue(t *testing.T) {
	tests := []struct {
		name, raw, key, want string
		ok                   bool
	}{
		{"first", "a=1&a=2", "a", "1", true},
		{"bare", "a", "a", "", true},
		{"absent", "b=1", "a", "", false},
		{"empty query", "", "a", "", false},
		{"prefix key", "ab=1", "a", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := queryValue(tt.raw, tt.key)
			if got != tt.want || ok != tt.ok {
				t.Errorf("queryValue(%q, %q) = %q, %v; want %q, %v", tt.raw, tt.key, got, ok, tt.want, tt.ok)
			}
		})
	}
}
