package routing

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/remora-mesh/remora/config"
)

// registry is the test service registry: bookinfo in "default" plus a
// two-port service and an external host with a VIP.
var registry = []Service{
	{Host: "reviews.default.svc.cluster.local", Ports: []uint32{9080}, Addresses: []string{"10.0.0.1"}},
	{Host: "ratings.default.svc.cluster.local", Ports: []uint32{9080}},
	{Host: "productpage.default.svc.cluster.local", Ports: []uint32{9080}},
	{Host: "service3.default.svc.cluster.local", Ports: []uint32{80, 81}},
	{Host: "api.example.com", Ports: []uint32{443}, Addresses: []string{"240.0.0.9"}},
	{Host: "www.wiki.org", Ports: []uint32{80}},
}

// parseVS decodes the VirtualServices in YAML text, failing on errors.
func parseVS(t testing.TB, text string) []*config.Object[config.VirtualService] {
	t.Helper()
	set, ds := config.Parse("test.yaml", []byte(text), config.Options{})
	if ds.HasErrors() {
		t.Fatalf("parse: %v", ds.Errors())
	}
	return set.VirtualServices
}

// loadVS reads testdata files.
func loadVS(t testing.TB, files ...string) []*config.Object[config.VirtualService] {
	t.Helper()
	var out []*config.Object[config.VirtualService]
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parseVS(t, string(data))...)
	}
	return out
}

// sidecar compiles vss for a sidecar in "default" with the test registry.
func sidecar(t testing.TB, vss []*config.Object[config.VirtualService]) *Table {
	t.Helper()
	tb, warns := Compile(vss, Context{Services: registry, Labels: map[string]string{"app": "productpage"}})
	for _, w := range warns {
		t.Logf("warning: %s", w)
	}
	return tb
}

// get builds a request.
func get(authority, path string, kv ...string) *Request {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return &Request{Method: "GET", Scheme: "http", Authority: authority, Path: path, Header: h, Port: 9080}
}

// cluster is the cluster a request would go to with random 0, or the
// outcome's name.
func cluster(tb *Table, req *Request) string {
	res := tb.Match(req)
	if res.Outcome != Matched {
		return res.Outcome.String()
	}
	if d := res.Route.Pick(0); d != nil {
		return d.Cluster
	}
	return "no-destination"
}
