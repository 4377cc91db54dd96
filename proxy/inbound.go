package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/upstream"
)

// Inbound upstream connections leave from these addresses so that
// iptables' `-o lo -s 127.0.0.6 -j RETURN` (and ::6 for IPv6) keeps them
// from being captured again (research notes §14.3).
var (
	InboundSource4 = netip.MustParseAddr("127.0.0.6")
	InboundSource6 = netip.MustParseAddr("::6")
)

// bindFailed is set once binding the inbound source failed, so the
// warning is logged once per process.
var bindFailed atomic.Bool

// dialInbound connects to dst, this workload's own address, from
// 127.0.0.6 (::6 for IPv6). When the source cannot be bound (::6 not on
// lo) it dials from the kernel's choice instead and warns once; a loop
// that could cause is caught by the own-socket check on accept.
func (l *Listener) dialInbound(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	src := InboundSource4
	if dst.Addr().Is6() {
		src = InboundSource6
	}
	d := net.Dialer{Timeout: l.connectTimeout(), LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	c, err := d.DialContext(ctx, "tcp", dst.String())
	if err != nil && bindError(err) {
		if !bindFailed.Swap(true) {
			l.Log.Warn("cannot bind the inbound source address; forwarding from the default source",
				zap.Stringer("source", src), zap.Error(err))
		}
		d.LocalAddr = nil
		c, err = d.DialContext(ctx, "tcp", dst.String())
	}
	if err != nil {
		return nil, &upstream.ConnectError{Addr: dst.String(), Err: err}
	}
	return c, nil
}

// bindError reports whether err is about the local address.
func bindError(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES)
}
