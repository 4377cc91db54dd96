package routing

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/remora-mesh/remora/config"
)

func ptr[T any](v T) *T { return &v }

// benchTable builds 1,000 registry hosts, each with a VirtualService of
// a header-and-regex rule and a catch-all, plus host "big" with 1,000
// rules mixing prefix, exact and regex uris with header conditions.
func benchTable(tb testing.TB) *Table {
	var svcs []Service
	var vss []*config.Object[config.VirtualService]
	dest := []config.HTTPRouteDestination{{Destination: config.Destination{Host: "big", Subset: "v1"}}}
	for i := range 1000 {
		h := fmt.Sprintf("svc%d", i)
		svcs = append(svcs, Service{Host: h + ".default.svc.cluster.local", Ports: []uint32{9080}})
		vss = append(vss, &config.Object[config.VirtualService]{Kind: "VirtualService", Meta: config.ObjectMeta{Name: h, Namespace: "default"},
			Spec: config.VirtualService{Hosts: []string{h}, HTTP: []config.HTTPRoute{
				{Match: []config.HTTPMatchRequest{{
					URI:     &config.StringMatch{Regex: ptr(`/api/v[0-9]+/items/\d+`)},
					Headers: map[string]config.StringMatch{"end-user": {Exact: ptr("jason")}},
				}}, Route: dest},
				{Route: dest},
			}}})
	}
	svcs = append(svcs, Service{Host: "big.default.svc.cluster.local", Ports: []uint32{9080}})
	var rules []config.HTTPRoute
	for i := range 1000 {
		m := config.HTTPMatchRequest{Headers: map[string]config.StringMatch{"x-version": {Regex: ptr("v[0-9]+")}}}
		switch i % 10 {
		case 0:
			m.URI = &config.StringMatch{Regex: ptr(fmt.Sprintf(`/re%d/[a-z]+/\d+`, i))}
		case 1:
			m.URI = &config.StringMatch{Exact: ptr(fmt.Sprintf("/exact%d", i))}
		default:
			m.URI = &config.StringMatch{Prefix: ptr(fmt.Sprintf("/svc%d/", i))}
		}
		rules = append(rules, config.HTTPRoute{Match: []config.HTTPMatchRequest{m}, Route: dest})
	}
	vss = append(vss, &config.Object[config.VirtualService]{Kind: "VirtualService", Meta: config.ObjectMeta{Name: "big", Namespace: "default"},
		Spec: config.VirtualService{Hosts: []string{"big"}, HTTP: rules}})
	t, warns := Compile(vss, Context{Services: svcs})
	if len(warns) > 0 {
		tb.Fatalf("warnings: %q", warns)
	}
	return t
}

func benchRequests() map[string]*Request {
	hdr := http.Header{"End-User": {"jason"}, "X-Version": {"v12"}, "User-Agent": {"curl/8"}, "Accept": {"*/*"}}
	req := func(host, path string) *Request {
		return &Request{Method: "GET", Scheme: "http", Authority: host, Path: path, Header: hdr, Port: 9080}
	}
	return map[string]*Request{
		"ManyHosts/regex":    req("svc777.default.svc.cluster.local:9080", "/api/v2/items/42?x=1"),
		"ManyHosts/catchall": req("svc123", "/other"),
		"ManyHosts/upper":    req("SVC999.Default", "/api/v1/items/1"),
		"OneHost/lastPrefix": req("big", "/svc999/items/1?q=2"),
		"OneHost/lastRegex":  req("big", "/re990/abc/123"),
		"OneHost/exact":      req("big", "/exact991"),
		"OneHost/noMatch":    req("big", "/nothing/here"),
		"UnknownHost":        req("nowhere.example.com", "/"),
	}
}

func BenchmarkMatch(b *testing.B) {
	t := benchTable(b)
	for name, req := range benchRequests() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t.Match(req)
			}
		})
	}
}

// TestMatchAllocs keeps Match free of allocations.
func TestMatchAllocs(t *testing.T) {
	tb := benchTable(t)
	for name, req := range benchRequests() {
		res := tb.Match(req)
		if name != "UnknownHost" && name != "OneHost/noMatch" && res.Outcome != Matched {
			t.Errorf("%s: outcome %v; want Matched", name, res.Outcome)
		}
		if n := testing.AllocsPerRun(100, func() { tb.Match(req) }); n != 0 {
			t.Errorf("%s: %v allocs per Match; want 0", name, n)
		}
	}
}
