package proxy

import (
	"math/rand/v2"

	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/snapshot"
)

// tcpCluster picks the cluster for a TCP connection from the snapshot's
// tcp/tls VirtualService rules (tls rules by SNI when the connection is
// TLS), else the service's default cluster outbound|port||host. It
// returns "" when the destination has no service, or when a
// VirtualService covers it but no rule matched (Istio's sidecar then
// uses its passthrough chain): the caller passes through or closes by
// outbound policy.
func (l *Listener) tcpCluster(ci *ConnInfo, isTLS bool, sni string) string {
	if rt := ci.Snapshot.Routes; rt != nil {
		c := routing.Conn{DstIP: ci.Original.Addr(), Port: uint32(ci.Original.Port()), SNI: sni}
		var res routing.L4Result
		if isTLS {
			res = rt.MatchTLS(c)
		}
		if res.Outcome == routing.UnknownHost {
			res = rt.MatchTCP(c)
		}
		switch res.Outcome {
		case routing.Matched:
			if d := res.Route.Pick(rand.Uint64()); d != nil {
				return d.Cluster
			}
			return ""
		case routing.NotFound:
			return ""
		}
	}
	if ci.Service == nil {
		return ""
	}
	return snapshot.ClusterName(ci.Port, "", ci.Service.Host)
}

// wantSNI reports whether a TLS connection to ci's destination must be
// read for its SNI before routing: only when tls rules cover it.
func (l *Listener) wantSNI(ci *ConnInfo) bool {
	rt := ci.Snapshot.Routes
	if rt == nil {
		return false
	}
	c := routing.Conn{DstIP: ci.Original.Addr(), Port: uint32(ci.Original.Port())}
	return rt.MatchTLS(c).Outcome != routing.UnknownHost
}
