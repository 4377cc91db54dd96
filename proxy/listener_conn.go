package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/lb"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// serveConn serves one accepted connection in its own goroutine.
func (l *Listener) serveConn(c net.Conn, port uint16) {
	ci := &ConnInfo{Snapshot: l.Store.Load(), Inbound: l.Inbound, Remote: addrPortOf(c.RemoteAddr())}
	defer func() {
		if !ci.started {
			c.Close()
			l.untrack(nil, c)
		}
	}()
	local := addrPortOf(c.LocalAddr())
	ci.Original = local
	if tc, ok := c.(*net.TCPConn); ok {
		if dst, err := l.origDst(tc); err == nil && dst.IsValid() {
			ci.Original = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		}
	}
	// The per-connection fields are encoded eagerly by zap: build them only
	// when debug lines will be written.
	log := l.Log
	if log.Core().Enabled(zap.DebugLevel) {
		log = log.With(zap.String("listener", l.Name), zap.Stringer("remote", ci.Remote), zap.Stringer("original", ci.Original))
	}
	if _, loop := l.own.Load(ci.Remote); loop {
		log.Warn("closing a connection from this listener's own upstream socket: interception loop (is the proxy running as the uid iptables excludes?)",
			zap.String("listener", l.Name), zap.Stringer("remote", ci.Remote))
		return
	}
	if ci.Snapshot == nil {
		log.Debug("closing: no config loaded yet")
		return
	}
	start := time.Now()
	if l.Inbound {
		if ci.Original.Port() == port {
			log.Debug("closing: connection addressed to the inbound port itself")
			return
		}
		l.serveInbound(c, ci, log, start)
		return
	}
	if ci.Original == local {
		ci.Explicit = true
		log.Debug("accepted", zap.Bool("explicit", true))
		l.serveHTTP(c, ci, log)
		return
	}
	l.serveOutbound(c, ci, log, start)
}

// serveOutbound routes a redirected connection by original destination.
func (l *Listener) serveOutbound(c net.Conn, ci *ConnInfo, log *zap.Logger, start time.Time) {
	m := l.services(ci.Snapshot).outbound(ci.Original)
	ci.Service, ci.Port = m.svc, uint32(ci.Original.Port())
	log.Debug("accepted", zap.String("service", hostOf(m.svc)), zap.String("protocol", string(m.proto)))
	rec := &TCPRecord{Info: ci, Start: start}
	switch {
	case m.httpPort || m.svc != nil && m.proto.IsHTTP():
		l.serveHTTP(c, ci, log)
		return
	case m.svc == nil || m.proto == config.Unknown:
		pc, s, err := SniffConn(c, l.SniffTimeout)
		if err != nil {
			return
		}
		c, rec.Detected, rec.SNI = pc.Unwrap(), s.Protocol, s.SNI
		if s.Protocol.IsHTTP() {
			l.serveHTTP(c, ci, log)
			return
		}
	case m.proto.IsTLS() && l.wantSNI(ci):
		pc, s, err := SniffConn(c, l.SniffTimeout)
		if err != nil {
			return
		}
		c, rec.Detected, rec.SNI = pc.Unwrap(), s.Protocol, s.SNI
	}
	rec.Cluster = l.tcpCluster(ci, rec.Detected == DetectedTLS, rec.SNI)
	if rec.Cluster == "" {
		if ci.Snapshot.Outbound == snapshot.RegistryOnly {
			rec.Cluster, rec.Flags = BlackHoleCluster, telemetry.NoHealthyUpstream
			l.finish(rec, log)
			return
		}
		rec.Cluster = PassthroughCluster
	}
	l.forward(c, rec, log)
}

// serveInbound forwards a connection to this workload to its original
// destination, through the HTTP chain when it is HTTP.
func (l *Listener) serveInbound(c net.Conn, ci *ConnInfo, log *zap.Logger, start time.Time) {
	svc, proto := l.services(ci.Snapshot).inbound(ci.Original)
	ci.Service, ci.Port = svc, uint32(ci.Original.Port())
	log.Debug("accepted", zap.String("service", hostOf(svc)), zap.String("protocol", string(proto)))
	rec := &TCPRecord{Info: ci, Start: start, Cluster: InboundPassthroughCluster}
	if proto.IsHTTP() {
		l.serveHTTP(c, ci, log)
		return
	}
	if proto == config.Unknown {
		pc, s, err := SniffConn(c, l.SniffTimeout)
		if err != nil {
			return
		}
		c, rec.Detected, rec.SNI = pc.Unwrap(), s.Protocol, s.SNI
		if s.Protocol.IsHTTP() {
			l.serveHTTP(c, ci, log)
			return
		}
	}
	l.forward(c, rec, log)
}

// serveHTTP hands c to the HTTP chain, which owns it until ServeConn
// returns, or, for a server that starts connections on goroutines of
// their own, until it calls done (then ci.started is set and this
// goroutine ends at once).
func (l *Listener) serveHTTP(c net.Conn, ci *ConnInfo, log *zap.Logger) {
	if l.HTTP == nil {
		log.Warn("closing an HTTP connection: no HTTP server configured")
		return
	}
	if s, ok := l.HTTP.(connStarter); ok {
		ci.started = true
		s.StartConn(c, ci, func() { c.Close(); l.untrack(nil, c) })
		return
	}
	l.HTTP.ServeConn(c, ci)
}

// connStarter is an HTTPConnServer that can serve a connection on a
// goroutine of its own (HTTPServer does).
type connStarter interface {
	StartConn(c net.Conn, ci *ConnInfo, done func())
}

// forward dials rec.Cluster and copies bytes until the connection ends.
func (l *Listener) forward(c net.Conn, rec *TCPRecord, log *zap.Logger) {
	ctx, cancel := context.WithCancel(l.ctx)
	defer cancel()
	up, host, err := l.dial(ctx, rec)
	if err != nil {
		rec.Flags = flagFor(err)
		log.Debug("upstream dial", zap.String("cluster", rec.Cluster), zap.Error(err))
		l.finish(rec, log)
		return
	}
	rec.UpstreamHost = host
	rec.UpstreamLocal = addrPortOf(up.LocalAddr())
	l.own.Store(rec.UpstreamLocal, struct{}{})
	defer l.own.Delete(rec.UpstreamLocal)
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	l.recordOpen(rec)
	rec.Result = ForwardTCPReporting(c, up, l.idleTimeout(rec), l.ReportInterval, l.reportBytes(rec))
	l.finish(rec, log)
}

// reportBytes reports a connection's running byte totals to the Istio TCP
// metrics; nil without telemetry.
func (l *Listener) reportBytes(rec *TCPRecord) func(received, sent int64) {
	if l.Telemetry == nil {
		return nil
	}
	return func(received, sent int64) { l.Telemetry.RecordTCPBytes(&rec.tel, sent, received) }
}

// idleTimeout is the cluster's DestinationRule
// connectionPool.tcp.idleTimeout, which Istio makes the TCP proxy's idle
// timeout ("0s" turns it off), else the listener's.
func (l *Listener) idleTimeout(rec *TCPRecord) time.Duration {
	if snap := rec.Info.Snapshot; snap != nil {
		if cl := snap.Clusters[rec.Cluster]; cl != nil {
			if cp := cl.Policy.ConnectionPool; cp != nil && cp.TCP != nil && cp.TCP.IdleTimeout != nil {
				if d := cp.TCP.IdleTimeout.Duration; d > 0 {
					return d
				}
				return -1
			}
		}
	}
	return l.IdleTimeout
}

func (l *Listener) finish(rec *TCPRecord, log *zap.Logger) {
	rec.Duration = time.Since(rec.Start)
	log.Debug("tcp done", zap.String("cluster", rec.Cluster), zap.String("upstream", rec.UpstreamHost),
		zap.Stringer("flags", rec.Flags), zap.Int64("received", rec.Result.Received), zap.Int64("sent", rec.Result.Sent),
		zap.Bool("idle_timeout", rec.Result.IdleTimeout))
	l.recordClose(rec)
	if l.OnTCP != nil {
		l.OnTCP(rec)
	}
}

// errNoCluster means the snapshot names a cluster the upstream manager
// does not have (flag NC).
var errNoCluster = errors.New("no cluster")

// dial connects to rec.Cluster: an upstream cluster, the passthrough
// cluster (original destination), or, inbound, the original destination
// from 127.0.0.6 / ::6.
func (l *Listener) dial(ctx context.Context, rec *TCPRecord) (net.Conn, string, error) {
	orig := rec.Info.Original
	if rec.Cluster == InboundPassthroughCluster {
		c, err := l.dialInbound(ctx, orig)
		return c, orig.String(), err
	}
	// Consistent-hash clusters hash the downstream IP (useSourceIp).
	opt := upstream.AttemptOptions{Original: orig, Hash: lb.HashSourceIP(rec.Info.Remote.Addr().String()), HasHash: true}
	if l.dialCluster != nil {
		c, err := l.dialCluster(ctx, rec.Cluster, opt)
		return c, orig.String(), err
	}
	var cl *upstream.Cluster
	if l.Upstream != nil {
		if rec.Cluster == PassthroughCluster {
			cl = l.Upstream.Passthrough()
		} else {
			cl = l.Upstream.Cluster(rec.Cluster)
		}
	}
	if cl == nil {
		if rec.Cluster != PassthroughCluster {
			return nil, "", errNoCluster
		}
		d := net.Dialer{Timeout: l.connectTimeout()}
		c, err := d.DialContext(ctx, "tcp", orig.String())
		if err != nil {
			return nil, "", &upstream.ConnectError{Addr: orig.String(), Err: err}
		}
		return c, orig.String(), nil
	}
	c, h, err := cl.DialTCP(ctx, opt)
	if err != nil {
		return nil, "", err
	}
	addr := ""
	if h != nil {
		addr = h.Addr
	}
	return c, addr, nil
}

func (l *Listener) connectTimeout() time.Duration {
	if l.ConnectTimeout > 0 {
		return l.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// flagFor maps a dial error to Envoy's response flag.
func flagFor(err error) telemetry.ResponseFlags {
	switch {
	case errors.Is(err, upstream.ErrOverflow):
		return telemetry.UpstreamOverflow
	case errors.Is(err, upstream.ErrNoHealthyUpstream):
		return telemetry.NoHealthyUpstream
	case errors.Is(err, errNoCluster):
		return telemetry.NoClusterFound
	}
	return telemetry.UpstreamConnectionFailure
}

func hostOf(s *snapshot.Service) string {
	if s == nil {
		return ""
	}
	return s.Host
}
