package proxy

import "github.com/remora-mesh/remora/snapshot"

// tcpCluster picks the cluster for a TCP connection: the service's
// default cluster outbound|port||host, or "" when the destination has
// no service (passthrough or blackhole by outbound policy).
//
// TODO(routing): consult the snapshot's tcp/tls VirtualService rules
// (routing.Table.MatchTCP/MatchTLS) once the snapshot carries them.
func (l *Listener) tcpCluster(ci *ConnInfo, sni string) string {
	if ci.Service == nil {
		return ""
	}
	return snapshot.ClusterName(ci.Port, "", ci.Service.Host)
}

// wantSNI reports whether TLS connections must be read for their SNI
// before routing: only when tls rules exist.
func (l *Listener) wantSNI(snap *snapshot.Snapshot) bool { return false }
