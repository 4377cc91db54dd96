package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/remora-mesh/remora/config"
)

// writeBigConfig writes n ServiceEntries, VirtualServices and
// DestinationRules, one file per kind, as a large mesh would have.
func writeBigConfig(tb testing.TB, dir string, n int) {
	tb.Helper()
	var se, vs, dr strings.Builder
	for i := range n {
		fmt.Fprintf(&se, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-%[1]d}
spec:
  hosts: [svc-%[1]d]
  addresses: [198.18.%[2]d.%[3]d]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.%[2]d.%[3]d, labels: {version: v1}}
  - {address: 127.1.%[2]d.%[3]d, labels: {version: v2}}
---
`, i, i/250, i%250+1)
		fmt.Fprintf(&vs, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-%[1]d}
spec:
  hosts: [svc-%[1]d]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
      uri: {regex: "/api/v[0-9]+/.*"}
    route:
    - destination: {host: svc-%[1]d, subset: v2}
    fault:
      delay: {fixedDelay: 1s, percentage: {value: 10}}
  - route:
    - destination: {host: svc-%[1]d, subset: v1}
      weight: 90
    - destination: {host: svc-%[1]d, subset: v2}
      weight: 10
    timeout: 3s
    retries: {attempts: 3, retryOn: "5xx,reset"}
---
`, i)
		fmt.Fprintf(&dr, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-%[1]d}
spec:
  host: svc-%[1]d
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 100}
      http: {http1MaxPendingRequests: 10, maxRequestsPerConnection: 10}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}
---
`, i)
	}
	for name, b := range map[string]*strings.Builder{"se.yaml": &se, "vs.yaml": &vs, "dr.yaml": &dr} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkReload1000 is one full reload (read, decode, validate, analyze,
// compile) of 1,000 ServiceEntries, VirtualServices and DestinationRules.
// The target is well under 1 s per op.
func BenchmarkReload1000(b *testing.B) {
	dir := b.TempDir()
	writeBigConfig(b, dir, 1000)
	b.ReportAllocs()
	for b.Loop() {
		set, diags, err := config.Load(dir, config.Options{})
		if err != nil {
			b.Fatal(err)
		}
		snap, err := Build(set, diags, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Clusters) != 3000 {
			b.Fatalf("%d clusters; want 3000", len(snap.Clusters))
		}
	}
}

func TestBigConfigLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips the 3,000-resource load")
	}
	dir := t.TempDir()
	writeBigConfig(t, dir, 1000)
	set, diags, err := config.Load(dir, config.Options{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("load: %v %v", err, diags.Errors())
	}
	if set.Count() != 3000 {
		t.Errorf("%d resources; want 3000", set.Count())
	}
}
