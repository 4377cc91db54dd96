package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"

	"github.com/remora-mesh/remora/internal/rawio"
	"github.com/remora-mesh/remora/outlier"
)

// dial connects to ep within the connect timeout, with TCP keepalive and
// TLS origination as the cluster sets them, and records the local-origin
// result for outlier detection. The caller holds a reserved slot. sni is
// the TLS server name (ignored for plaintext). Failures are *ConnectError.
func (c *Cluster) dial(ctx context.Context, s *settings, ep *endpoint, sni string) (net.Conn, bool, error) {
	conn, err := c.dialRaw(ctx, s, ep, sni)
	if err != nil {
		ep.cxFail.Add(1)
		switch {
		case ctx.Err() != nil: // the caller went away: not the endpoint's fault
		case errors.Is(err, context.DeadlineExceeded):
			c.recordLocal(ep, outlier.Timeout)
		default:
			c.recordLocal(ep, outlier.ConnectFailed)
		}
		return nil, false, &ConnectError{Addr: ep.addr, Err: err}
	}
	ep.cxTotal.Add(1)
	ep.cxActive.Add(1)
	c.recordLocal(ep, outlier.ConnectSuccess)
	_, isTLS := conn.(*tls.Conn)
	return conn, isTLS, nil
}

func (c *Cluster) dialRaw(ctx context.Context, s *settings, ep *endpoint, sni string) (net.Conn, error) {
	if s.tlsErr != nil {
		return nil, s.tlsErr
	}
	dctx, cancel := context.WithTimeout(ctx, s.connect)
	defer cancel()
	d := net.Dialer{KeepAlive: -1}
	if s.keepAlive != nil {
		d.KeepAliveConfig = *s.keepAlive
	}
	conn, err := d.DialContext(dctx, ep.network, ep.dial)
	if err != nil {
		return nil, err
	}
	conn = rawio.Wrap(conn) // HTTP exchanges skip the scheduler's syscall path
	if s.tls == nil {
		return conn, nil
	}
	tc := tls.Client(conn, s.tls.config(sni))
	if err := tc.HandshakeContext(dctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// Conn is a TCP proxy connection from DialTCP. The embedded net.Conn is the
// raw connection (*net.TCPConn, *net.UnixConn or, with TLS origination,
// *tls.Conn): copy through it (io.Copy(c.Conn, down)) so the kernel can
// splice, and Close the *Conn itself, which closes the socket and releases
// the cluster's connection slot exactly once.
type Conn struct {
	net.Conn
	c    *Cluster
	ep   *endpoint
	done atomic.Bool
}

// Close closes the connection and releases its maxConnections slot. It is
// safe to call more than once.
func (uc *Conn) Close() error {
	if !uc.done.CompareAndSwap(false, true) {
		return nil
	}
	err := uc.Conn.Close()
	uc.ep.cxActive.Add(-1)
	uc.c.unreserve(uc.ep)
	uc.c.unref(uc.ep)
	return err
}

// CloseWrite shuts down the writing side (TCP half-close) when the raw
// connection supports it; otherwise it does nothing.
func (uc *Conn) CloseWrite() error {
	if cw, ok := uc.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// DialTCP picks an endpoint and connects to it for a TCP proxy
// connection, enforcing maxConnections (ErrOverflow) and connectTimeout
// (*ConnectError); Close on the returned conn releases its slot. The conn
// is a *Conn. A consistent-hash cluster hashes opt.Hash (the caller passes
// lb.HashSourceIP of the downstream address). The connect result is
// reported to outlier detection as TCP proxy results are (a successful
// connect counts as a success).
func (c *Cluster) DialTCP(ctx context.Context, opt AttemptOptions) (net.Conn, *Host, error) {
	s := c.set.Load()
	ep, err := c.pick(ctx, s, &opt)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if c.cx >= s.limits.MaxConnections {
		c.mu.Unlock()
		c.stats.cxOverflow.Add(1)
		c.unref(ep)
		return nil, ep.host, ErrOverflow
	}
	c.reserveLocked(ep)
	c.mu.Unlock()
	sni := s.host
	if s.tls != nil && s.tls.sni != "" {
		sni = s.tls.sni
	}
	conn, _, err := c.dial(ctx, s, ep, sni)
	if err != nil {
		c.unreserve(ep)
		c.unref(ep)
		return nil, ep.host, err
	}
	c.recordLocal(ep, outlier.ConnectSuccessFinal)
	return &Conn{Conn: rawio.Unwrap(conn), c: c, ep: ep}, ep.host, nil // a TCP proxy splices
}
