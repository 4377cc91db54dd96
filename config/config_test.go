package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vsBase is a valid VirtualService; cases break one line of it.
const vsBase = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - match:
    - uri:
        prefix: /api
    route:
    - destination:
        host: reviews
        subset: v1
        port:
          number: 9080
      weight: 90
    - destination:
        host: reviews
        subset: v2
      weight: 10
    timeout: 2s
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           string // exact diagnostic, file "vs.yaml"
	}{
		{"unknown field", "    route:\n", "    rout:\n",
			`vs.yaml:12: error: VirtualService/default/reviews: spec.http[0].rout: unknown field "rout"`},
		{"wrong type", "      weight: 90\n", "      weight: ninety\n",
			`vs.yaml:18: error: VirtualService/default/reviews: spec.http[0].route[0].weight: want an integer, got string "ninety"`},
		{"list for scalar", "    timeout: 2s\n", "    timeout: [2s]\n",
			`vs.yaml:23: error: VirtualService/default/reviews: spec.http[0].timeout: want a duration such as 2s, got a list`},
		{"bad duration", "    timeout: 2s\n", "    timeout: 2 seconds\n",
			`vs.yaml:23: error: VirtualService/default/reviews: spec.http[0].timeout: invalid duration "2 seconds" (want e.g. 2s, 100ms, 3m)`},
		{"duration too small", "    timeout: 2s\n", "    timeout: 100us\n",
			`vs.yaml:23: error: VirtualService/default/reviews: spec.http[0].timeout: duration must be at least 1ms, got 100µs`},
		{"invalid regex", "        prefix: /api\n", "        regex: /api(\n",
			"vs.yaml:11: error: VirtualService/default/reviews: spec.http[0].match[0].uri.regex: invalid RE2 regex \"/api(\": error parsing regexp: missing closing ): `/api(`"},
		{"two string matches", "        prefix: /api\n", "        prefix: /api\n        exact: /api\n",
			`vs.yaml:10: error: VirtualService/default/reviews: spec.http[0].match[0].uri: only one of exact, prefix or regex may be set`},
		{"port out of range", "          number: 9080\n", "          number: 70000\n",
			`vs.yaml:17: error: VirtualService/default/reviews: spec.http[0].route[0].destination.port.number: port number 70000 is out of range 1-65535`},
		{"bad host", "  - reviews\n", "  - reviews!\n",
			`vs.yaml:7: error: VirtualService/default/reviews: spec.hosts[0]: invalid host "reviews!" (a DNS name, optionally with a leading "*.")`},
		{"mesh wildcard", "  - reviews\n", "  - \"*\"\n",
			`vs.yaml:7: error: VirtualService/default/reviews: spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh gateway`},
		{"negative weight", "      weight: 90\n", "      weight: -5\n",
			`vs.yaml:18: error: VirtualService/default/reviews: spec.http[0].route[0].weight: weight -5 must not be negative`},
		{"missing name", "  name: reviews\n", "  labels: {a: b}\n",
			`vs.yaml:3: error: VirtualService/default/: metadata.name: a name is required`},
		{"bad name", "  name: reviews\n", "  name: Reviews_1\n",
			`vs.yaml:4: error: VirtualService/default/Reviews_1: metadata.name: "Reviews_1" is not a valid name (lower-case DNS-1123 subdomain)`},
		{"unknown kind", "kind: VirtualService\n", "kind: VirtualServce\n",
			`vs.yaml:1: error: VirtualServce/default/reviews: unknown kind "VirtualServce" in networking.istio.io (want one of DestinationRule, Gateway, ServiceEntry, Sidecar, VirtualService, WorkloadEntry)`},
		{"unknown version", "networking.istio.io/v1\n", "networking.istio.io/v2\n",
			`vs.yaml:1: error: VirtualService/default/reviews: unknown apiVersion "networking.istio.io/v2" (want networking.istio.io/v1, v1beta1 or v1alpha3)`},
		{"yaml syntax", "  hosts:\n", "  hosts: [\n",
			`vs.yaml:6: error: YAML syntax: did not find expected node content`},
		{"unknown top-level", "spec:\n", "specs:\n",
			`vs.yaml:5: error: VirtualService/default/reviews: specs: unknown field "specs"`},
		{"field twice", "    timeout: 2s\n", "    timeout: 2s\n    timeout: 3s\n",
			`vs.yaml:24: error: VirtualService/default/reviews: spec.http[0].timeout: field "timeout" given twice`},
		{"retry attempts 0 with retryOn", "    timeout: 2s\n", "    retries: {attempts: 0, retryOn: 5xx}\n",
			`vs.yaml:23: error: VirtualService/default/reviews: spec.http[0].retries: attempts 0 (no retries) cannot be combined with perTryTimeout, retryOn or retryRemoteLocalities`},
		{"retryOn with spaces", "    timeout: 2s\n", "    retries: {attempts: 3, retryOn: \"5xx, reset\"}\n",
			`vs.yaml:23: error: VirtualService/default/reviews: spec.http[0].retries.retryOn: " reset" is not a valid retry condition (comma list without spaces of Envoy retry_on values or status codes)`},
		{"abort status", "    timeout: 2s\n", "    fault:\n      abort:\n        httpStatus: 600\n        percentage: {value: 50}\n",
			`vs.yaml:25: error: VirtualService/default/reviews: spec.http[0].fault.abort.httpStatus: status 600 must be within 200-599`},
		{"fault percentage", "    timeout: 2s\n", "    fault:\n      delay:\n        fixedDelay: 1s\n        percentage: {value: 120}\n",
			`vs.yaml:26: error: VirtualService/default/reviews: spec.http[0].fault.delay.percentage: percentage 120 must be within 0-100`},
		{"bad enum", "    timeout: 2s\n", "    redirect: {uri: /x, derivePort: FROM_NOWHERE}\n",
			`vs.yaml:23: error: VirtualService/default/reviews: spec.http[0].redirect.derivePort: unknown value "FROM_NOWHERE" (want one of FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(vsBase, tt.old, tt.new, 1)
			if src == vsBase {
				t.Fatalf("case does not change the base document")
			}
			_, diags := Parse("vs.yaml", []byte(src), Options{})
			for _, d := range diags {
				if d.String() == tt.want {
					return
				}
			}
			t.Errorf("diagnostics:\n%s\nwant:\n%s", joinDiags(diags), tt.want)
		})
	}
}

func joinDiags(ds Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestParseOtherKinds(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"all weights zero", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {host: a.example.com, subset: a}\n    - destination: {host: a.example.com, subset: b}\n",
			`x.yaml:7: error: VirtualService/default/v: spec.http[0].route: total destination weight must be greater than 0, got 0`},
		{"no action", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example.com]\n  http:\n  - timeout: 1s\n",
			`x.yaml:7: error: VirtualService/default/v: spec.http[0]: HTTP route must have one of route, redirect, directResponse or delegate`},
		{"header value with newline", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example.com]\n  http:\n  - headers:\n      request:\n        set: {x-a: \"1\\r\\nx-b: 2\"}\n    route:\n    - destination: {host: a.example.com}\n",
			`x.yaml:9: error: VirtualService/default/v: spec.http[0].headers.request.set.x-a: header value must not contain CR, LF or NUL`},
		{"dr bad enum", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy:\n    loadBalancer:\n      simple: FASTEST\n",
			`x.yaml:8: error: DestinationRule/default/r: spec.trafficPolicy.loadBalancer.simple: unknown value "FASTEST" (want one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST)`},
		{"dr duplicate subset", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  subsets:\n  - name: v1\n  - name: v1\n",
			`x.yaml:8: error: DestinationRule/default/r: spec.subsets[1].name: duplicate subset name "v1"`},
		{"dr max ejection", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy:\n    outlierDetection:\n      maxEjectionPercent: 150\n",
			`x.yaml:8: error: DestinationRule/default/r: spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be within 0-100`},
		{"dr consecutiveErrors deprecated", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy:\n    outlierDetection:\n      consecutiveErrors: 1\n",
			`x.yaml:8: warning: DestinationRule/default/r: spec.trafficPolicy.outlierDetection.consecutiveErrors: deprecated: ignored since Istio 1.7; use consecutive5xxErrors`},
		{"gw https without tls", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [\"*\"]\n",
			`x.yaml:6: error: Gateway/default/g: spec.servers[0].tls: server must have TLS settings for HTTPS/TLS protocols`},
		{"gw bad protocol", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: QUIC}\n    hosts: [\"*\"]\n",
			`x.yaml:6: error: Gateway/default/g: spec.servers[0].port.protocol: invalid protocol "QUIC" (want HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS or MONGO)`},
		{"se duplicate port name", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: http}\n  - {number: 81, name: http}\n",
			`x.yaml:8: error: ServiceEntry/default/s: spec.ports[1].name: port names must be unique: "http" is used twice`},
		{"se bad address", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n  hosts: [a.example.com]\n  addresses: [10.0.0.300]\n  ports:\n  - {number: 80, name: http}\n",
			`x.yaml:6: error: ServiceEntry/default/s: spec.addresses[0]: "10.0.0.300" is not an IP address or CIDR block`},
		{"se static dns endpoint", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n  hosts: [a.example.com]\n  ports:\n  - {number: 80, name: http}\n  resolution: STATIC\n  endpoints:\n  - address: foo.example.com\n",
			`x.yaml:10: error: ServiceEntry/default/s: spec.endpoints[0].address: endpoint address "foo.example.com" must be an IP address (DNS names need resolution DNS)`},
		{"sidecar host without namespace", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default}\nspec:\n  egress:\n  - hosts: [reviews]\n",
			`x.yaml:6: error: Sidecar/default/default: spec.egress[0].hosts[0]: host "reviews" must be namespace/dnsName`},
		{"websocketUpgrade removed", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example.com]\n  http:\n  - websocketUpgrade: true\n    route:\n    - destination: {host: a.example.com}\n",
			`x.yaml:7: warning: VirtualService/default/v: spec.http[0].websocketUpgrade: removed from Istio (WebSocket upgrades are always allowed); ignored`},
		{"envoyfilter not implemented", "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f}\nspec: {}\n",
			`x.yaml:1: warning: EnvoyFilter/default/f: kind EnvoyFilter is not implemented by remora; ignored`},
		{"security kind not implemented", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p}\nspec: {}\n",
			`x.yaml:1: warning: PeerAuthentication/default/p: security.istio.io/v1 PeerAuthentication is not implemented by remora; ignored`},
		{"deployment skipped", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n",
			`x.yaml:1: note: Deployment/default/d: skipped apps/v1 Deployment: not an Istio networking resource`},
		{"snake case accepted", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example.com]\n  tls:\n  - match:\n    - sni_hosts: [a.example.com]\n    route:\n    - destination: {host: a.example.com}\n",
			`x.yaml:10: warning: VirtualService/default/v: spec.tls[0].route[0].destination.host: host "a.example.com" is not registered by any ServiceEntry: requests get 503 NC`},
		{"duplicate resource", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n",
			`x.yaml:9: error: Gateway/default/g: duplicate Gateway/default/g: first defined at x.yaml:1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse("x.yaml", []byte(tt.src), Options{})
			for _, d := range diags {
				if d.String() == tt.want {
					return
				}
			}
			t.Errorf("diagnostics:\n%s\nwant:\n%s", joinDiags(diags), tt.want)
		})
	}
}

func TestAnalyzeWarnings(t *testing.T) {
	set, diags, err := Load("testdata/good", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() {
		t.Fatalf("good config has errors:\n%s", joinDiags(diags))
	}
	if got := set.Count(); got != 3 {
		t.Errorf("loaded %d resources; want 3 (the Deployment is skipped)", got)
	}
	broken := strings.Replace(readFile(t, "testdata/good/reviews.yaml"), "subset: v3}", "subset: v4}", 1)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.yaml"), broken+"---\n"+strings.Replace(vsBase, "name: reviews", "name: other", 1))
	_, diags, _ = Load(dir, Options{})
	want := []string{
		dir + `/r.yaml:68: warning: VirtualService/default/reviews: spec.http[1].route[1].destination.subset: subset "v4" of host "reviews.default.svc.cluster.local" is not defined by any DestinationRule: requests get 503 NC`,
	}
	for _, w := range want {
		found := false
		for _, d := range diags {
			found = found || d.String() == w
		}
		if !found {
			t.Errorf("diagnostics:\n%s\nwant:\n%s", joinDiags(diags), w)
		}
	}
}

func TestUnreachableRule(t *testing.T) {
	src := "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a.example.com]\n  http:\n  - route:\n    - destination: {host: a.example.com}\n  - match:\n    - uri: {prefix: /x}\n    route:\n    - destination: {host: a.example.com}\n"
	_, diags := Parse("x.yaml", []byte(src), Options{})
	want := `x.yaml:9: warning: VirtualService/default/v: spec.http[1]: rule is unreachable: spec.http[0] before it matches every request`
	for _, d := range diags {
		if d.String() == want {
			return
		}
	}
	t.Errorf("diagnostics:\n%s\nwant:\n%s", joinDiags(diags), want)
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, old, new string }{
		{"one zero weight", "      weight: 90\n", "      weight: 0\n"},
		{"relative weights", "      weight: 90\n", "      weight: 3\n"},
		{"string integer", "      weight: 90\n", "      weight: \"90\"\n"},
		{"snake case", "    timeout: 2s\n", "    retries:\n      attempts: 3\n      per_try_timeout: 1s\n      retry_on: 5xx,503\n"},
		{"legacy percent", "    timeout: 2s\n", "    fault:\n      delay:\n        fixedDelay: 7s\n        percent: 100\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse("vs.yaml", []byte(strings.Replace(vsBase, tt.old, tt.new, 1)), Options{})
			if diags.HasErrors() {
				t.Errorf("unexpected errors:\n%s", joinDiags(diags.Errors()))
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostileYAML(t *testing.T) {
	tests := []struct{ name, src string }{
		{"self alias", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec: &a\n  hosts: [a.example.com]\n  http: [*a]\n"},
		{"alias fan-out", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: v}\nspec:\n  hosts: &a [x.com, x.com, x.com, x.com, x.com, x.com, x.com, x.com]\n  addresses: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n  exportTo: [*b, *b, *b, *b, *b, *b, *b, *b]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse("x.yaml", []byte(tt.src), Options{})
			if !diags.HasErrors() {
				t.Errorf("hostile YAML accepted without error")
			}
		})
	}
}

// TestParseDropsFieldLines checks that a returned Set keeps no field-path
// lines (they are only for diagnostics, placed before Parse returns) but
// still knows where each resource starts.
func TestParseDropsFieldLines(t *testing.T) {
	set, ds := Parse("vs.yaml", []byte(vsBase), Options{})
	if ds.HasErrors() || len(set.VirtualServices) != 1 {
		t.Fatalf("Parse: %v", ds)
	}
	src := set.VirtualServices[0].Src
	if src.lines != nil {
		t.Errorf("Src.lines holds %d paths after Parse; want none", len(src.lines))
	}
	if got := src.LineOf("spec.http[0].timeout"); got != 1 {
		t.Errorf("LineOf after Parse = %d; want the resource's line 1", got)
	}
}
