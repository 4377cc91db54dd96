//go:build !linux

package proxy

import (
	"net"
	"net/netip"
)

// OriginalDst returns ErrNotSupported: recovering a redirected
// connection's destination needs Linux netfilter.
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) { return netip.AddrPort{}, ErrNotSupported }
