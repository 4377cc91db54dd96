package routing

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

const l4VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api-tls}
spec:
  hosts: [api.example.com]
  tls:
  - match: [{sniHosts: [api.example.com]}]
    route: [{destination: {host: api.example.com, subset: exact}}]
  - match: [{sniHosts: ["*.example.com"]}]
    route: [{destination: {host: api.example.com, subset: wild}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-tcp}
spec:
  hosts: [reviews]
  tcp:
  - match: [{destinationSubnets: [10.0.0.0/8]}]
    route: [{destination: {host: reviews, subset: wide}}]
  - match: [{destinationSubnets: [10.0.0.1/32]}]
    route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
  - match: [{port: 9999}]
    route: [{destination: {host: reviews, subset: never}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wiki}
spec:
  hosts: [www.wiki.org]
  tcp:
  - match: [{sourceLabels: {app: other}}]
    route: [{destination: {host: www.wiki.org, subset: filtered}}]
`

func TestMatchTLS(t *testing.T) {
	tb := sidecar(t, parseVS(t, l4VS))
	vip := netip.MustParseAddr("240.0.0.9")
	tests := []struct {
		name string
		conn Conn
		want string
	}{
		{"exact sni beats wildcard", Conn{DstIP: vip, Port: 443, SNI: "api.example.com"}, "outbound|443|exact|api.example.com"},
		{"wildcard sni", Conn{DstIP: vip, Port: 443, SNI: "x.example.com"}, "outbound|443|wild|api.example.com"},
		{"sni case-insensitive", Conn{DstIP: vip, Port: 443, SNI: "API.example.com"}, "outbound|443|exact|api.example.com"},
		{"no sni match", Conn{DstIP: vip, Port: 443, SNI: "other.org"}, "NotFound"},
		{"no sni", Conn{DstIP: vip, Port: 443}, "NotFound"},
		{"other address", Conn{DstIP: netip.MustParseAddr("1.2.3.4"), Port: 443, SNI: "api.example.com"}, "UnknownHost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l4Cluster(tb.MatchTLS(tt.conn)); got != tt.want {
				t.Errorf("MatchTLS(%+v) = %q; want %q", tt.conn, got, tt.want)
			}
		})
	}
}

func TestMatchTCP(t *testing.T) {
	tb := sidecar(t, parseVS(t, l4VS))
	tests := []struct {
		name string
		conn Conn
		want string
	}{
		{"longest subnet wins", Conn{DstIP: netip.MustParseAddr("10.0.0.1"), Port: 9080}, "outbound|9080|v1|reviews.default.svc.cluster.local"},
		{"registry default", Conn{DstIP: netip.MustParseAddr("240.0.0.9"), Port: 443}, "outbound|443||api.example.com"},
		// service3 and www.wiki.org have no VIP: the first host on the port
		// wins, and wiki's rule is filtered out by sourceLabels.
		{"no-VIP host on its port", Conn{DstIP: netip.MustParseAddr("8.8.8.8"), Port: 80}, "outbound|80||service3.default.svc.cluster.local"},
		{"unknown", Conn{DstIP: netip.MustParseAddr("8.8.8.8"), Port: 5432}, "UnknownHost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l4Cluster(tb.MatchTCP(tt.conn)); got != tt.want {
				t.Errorf("MatchTCP(%+v) = %q; want %q", tt.conn, got, tt.want)
			}
		})
	}
}

// TestTCPWeights draws 5000 connections; v1 must get 80% ± 2 points.
func TestTCPWeights(t *testing.T) {
	tb := sidecar(t, parseVS(t, l4VS))
	r := tb.MatchTCP(Conn{DstIP: netip.MustParseAddr("10.0.0.1"), Port: 9080}).Route
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 5000
	v1 := 0
	for range n {
		if r.Pick(rng.Uint64()).Subset == "v1" {
			v1++
		}
	}
	if got := float64(v1) * 100 / n; got < 78 || got > 82 {
		t.Errorf("v1 got %.1f%% of %d connections; want 80 ± 2", got, n)
	}
}

func TestTCPGateway(t *testing.T) {
	vs := `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tcp-echo}
spec:
  hosts: ["*"]
  gateways: [tcp-gateway]
  tcp:
  - match: [{port: 31400}]
    route: [{destination: {host: tcp-echo, port: {number: 9000}}}]
`
	tb, _ := Compile(parseVS(t, vs), Context{Gateways: []string{"default/tcp-gateway"}, Ports: []uint32{31400, 31401}})
	tests := []struct {
		port uint32
		want string
	}{
		{31400, "outbound|9000||tcp-echo.default.svc.cluster.local"},
		{31401, "NotFound"},
		{1, "UnknownHost"},
	}
	for _, tt := range tests {
		if got := l4Cluster(tb.MatchTCP(Conn{DstIP: netip.MustParseAddr("1.1.1.1"), Port: tt.port})); got != tt.want {
			t.Errorf("MatchTCP(port %d) = %q; want %q", tt.port, got, tt.want)
		}
	}
}

func l4Cluster(r L4Result) string {
	if r.Outcome != Matched {
		return r.Outcome.String()
	}
	return r.Route.Pick(0).Cluster
}
