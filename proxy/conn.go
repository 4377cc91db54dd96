// Package proxy runs the listeners — outbound capture (15001), inbound
// capture (15006) and gateway servers — recovers each connection's
// original destination, detects its protocol, and serves it: HTTP through
// the route → fault → timeout/retry/mirror → upstream chain, TCP by
// forwarding bytes.
package proxy

import (
	"net"
	"net/netip"

	"github.com/remora-mesh/remora/snapshot"
)

// ConnInfo is what the listener learned about one downstream connection
// before handing it to a protocol handler.
type ConnInfo struct {
	// Snapshot is the config the connection is served with, loaded once
	// when it was accepted.
	Snapshot *snapshot.Snapshot
	// Original is the connection's original destination (SO_ORIGINAL_DST,
	// or the local address under TPROXY or for explicit-proxy traffic).
	Original netip.AddrPort
	// Explicit is set when the connection was not redirected: the client
	// addressed the proxy itself (HTTP_PROXY use).
	Explicit bool
	// Inbound is set for connections captured on the inbound port.
	Inbound bool
	// Service is the registry service the original destination belongs
	// to, when known.
	Service *snapshot.Service
	// Port is the service port (the original destination port).
	Port uint32
	// Remote is the downstream peer.
	Remote netip.AddrPort

	started  bool   // the HTTP server took the connection over (StartConn)
	original string // Original formatted, when the HTTP/1 codec did it once
}

// HTTPConnServer serves HTTP/1.1 or HTTP/2 (h2c) on one accepted
// connection until it closes. The listener calls ServeConn in the
// connection's own goroutine.
type HTTPConnServer interface {
	ServeConn(c net.Conn, ci *ConnInfo)
}
