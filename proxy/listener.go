package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// ErrNotSupported is returned where the platform lacks what a feature
// needs (netfilter's original destination, IP_TRANSPARENT).
var ErrNotSupported = errors.New("not supported on this platform")

// DefaultConnectTimeout bounds dials remora makes itself (passthrough
// without an upstream cluster, inbound forwarding): Istio's 10s.
const DefaultConnectTimeout = 10 * time.Second

// Cluster names of Istio's special clusters, as they appear in the
// access log and metrics.
const (
	PassthroughCluster        = "PassthroughCluster"
	BlackHoleCluster          = "BlackHoleCluster"
	InboundPassthroughCluster = "InboundPassthroughCluster"
)

// Listener serves one capture port: outbound (15001: redirected
// connections by original destination, and explicit-proxy HTTP) or
// inbound (15006: connections to this workload, forwarded to their
// original destination from 127.0.0.6). Set the fields, then call Serve;
// the fields must not change afterwards. Serve and Shutdown are safe for
// concurrent use.
type Listener struct {
	// Name labels the listener in logs ("outbound", "inbound").
	Name string
	// Inbound selects inbound-capture semantics.
	Inbound bool
	// Store supplies the snapshot each connection is served with; a
	// connection accepted before the first snapshot is closed.
	Store *snapshot.Store
	// Upstream dials TCP clusters. Nil (or a cluster it does not know)
	// closes the connection with flag NC, except that the passthrough
	// cluster then falls back to a direct dial.
	Upstream *upstream.Manager
	// HTTP serves connections detected or declared as HTTP. Nil closes
	// them.
	HTTP HTTPConnServer
	// Log receives per-connection debug logs and warnings; nil is
	// silent.
	Log *zap.Logger
	// SniffTimeout bounds protocol detection; zero means
	// DefaultSniffTimeout.
	SniffTimeout time.Duration
	// IdleTimeout closes quiet TCP connections; zero means
	// DefaultIdleTimeout, negative never.
	IdleTimeout time.Duration
	// ReportInterval is how often a TCP connection's byte totals reach the
	// Istio metrics while it lasts; zero means TCPReportInterval.
	ReportInterval time.Duration
	// ConnectTimeout bounds the dials the listener makes itself; zero
	// means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxConnections caps the connections served at once; beyond it a
	// new connection is closed as soon as it is accepted (Envoy's
	// listener connection limit, counted as an overflow). Zero means no
	// limit.
	MaxConnections int
	// OnTCP, if set, is called once for each TCP-proxied (or closed)
	// connection when it ends, in the connection's goroutine.
	OnTCP func(*TCPRecord)
	// Telemetry records each TCP connection in the istio_tcp_* metrics and
	// the access log; nil means none.
	Telemetry *telemetry.Telemetry
	// Local holds the Istio labels of this proxy's workload (see
	// HTTPServer.Local).
	Local telemetry.Labels

	// origDst recovers original destinations; tests replace it.
	origDst func(*net.TCPConn) (netip.AddrPort, error)
	// dialCluster, if set, replaces Upstream (tests).
	dialCluster func(ctx context.Context, cluster string, opt upstream.AttemptOptions) (net.Conn, error)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
	shutting  atomic.Bool
	ctx       context.Context
	cancel    context.CancelFunc
	once      sync.Once
	index     atomic.Pointer[serviceIndex]
	// own holds the local addresses of this listener's upstream
	// connections: one accepted from such an address is a loop.
	own sync.Map
	// accepted counts connections accepted, for tests and logs.
	accepted atomic.Uint64
	active   telemetry.Gauge // remora_active_connections{listener=Name}
	// overflow counts connections closed by MaxConnections.
	overflow atomic.Uint64
}

// Overflowed reports how many connections MaxConnections refused.
func (l *Listener) Overflowed() uint64 { return l.overflow.Load() }

// overLimit reports whether MaxConnections connections are being served.
func (l *Listener) overLimit() bool {
	if l.MaxConnections <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns) >= l.MaxConnections
}

// TCPRecord describes one TCP connection the listener forwarded or
// refused, for the access log and the istio_tcp_* metrics.
type TCPRecord struct {
	Info  *ConnInfo
	Start time.Time
	// Duration is from accept to close.
	Duration time.Duration
	// Cluster is the upstream cluster (PassthroughCluster,
	// BlackHoleCluster, InboundPassthroughCluster or outbound|...).
	Cluster string
	// UpstreamHost is the endpoint "ip:port" ("" when none was reached).
	UpstreamHost string
	// UpstreamLocal is the local address of the upstream connection.
	UpstreamLocal netip.AddrPort
	// Flags are Envoy's response flags (UH, UF, UO, NC).
	Flags telemetry.ResponseFlags
	// Detected is what protocol detection found (DetectedTCP when it did
	// not run).
	Detected Detected
	// SNI is the TLS server name, when one was read.
	SNI    string
	Result TCPResult

	tel    telemetry.TCPConn
	labels telemetry.Labels
	opened bool
}

// Accepted reports how many connections the listener has accepted.
func (l *Listener) Accepted() uint64 { return l.accepted.Load() }

func (l *Listener) init() {
	l.once.Do(func() {
		l.ctx, l.cancel = context.WithCancel(context.Background())
		l.listeners = map[net.Listener]struct{}{}
		l.conns = map[net.Conn]struct{}{}
		if l.origDst == nil {
			l.origDst = OriginalDst
		}
		if l.Log == nil {
			l.Log = zap.NewNop()
		}
		l.active = l.Telemetry.ActiveConnections(l.Name)
	})
}

// ErrListenerClosed is returned by Serve after Shutdown.
var ErrListenerClosed = errors.New("proxy: listener closed")

// Serve accepts connections on ln and serves each in its own goroutine
// until ln fails or Shutdown is called; it always returns a non-nil
// error, ErrListenerClosed after Shutdown. Serve closes ln when it
// returns.
func (l *Listener) Serve(ln net.Listener) error {
	l.init()
	if !l.track(ln, nil) {
		ln.Close()
		return ErrListenerClosed
	}
	defer l.untrack(ln, nil)
	port := addrPortOf(ln.Addr()).Port()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if l.shutting.Load() {
				return ErrListenerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.Log.Warn("accept", zap.String("listener", l.Name), zap.Error(err), zap.Duration("retry", backoff))
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		l.accepted.Add(1)
		if l.overLimit() {
			l.overflow.Add(1)
			c.Close()
			continue
		}
		if !l.track(nil, c) {
			c.Close()
			continue
		}
		go l.serveConn(c, port)
	}
}

// Shutdown stops accepting, waits for the connections in flight until
// ctx is done, then closes those that remain and waits for their
// goroutines. It returns ctx's error when it had to close connections.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.init()
	l.shutting.Store(true)
	l.mu.Lock()
	for ln := range l.listeners {
		ln.Close()
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	l.cancel()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	<-done
	return ctx.Err()
}

// track registers a listener or connection; false means the listener
// is shutting down.
func (l *Listener) track(ln net.Listener, c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutting.Load() {
		return false
	}
	if ln != nil {
		l.listeners[ln] = struct{}{}
	}
	if c != nil {
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.active.Inc()
	}
	return true
}

func (l *Listener) untrack(ln net.Listener, c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ln != nil {
		delete(l.listeners, ln)
		ln.Close()
	}
	if c != nil {
		delete(l.conns, c)
		l.wg.Done()
		l.active.Dec()
	}
}

// Listen binds a capture listener on addr ("" host: every address, IPv4
// and IPv6). With transparent it also asks for IP_TRANSPARENT so TPROXY
// connections are accepted; without CAP_NET_ADMIN that fails, the
// listener is bound anyway (REDIRECT still works) and tproxy is false.
func Listen(ctx context.Context, addr string, transparent bool) (ln net.Listener, tproxy bool, err error) {
	if !transparent {
		ln, err = net.Listen("tcp", addr)
		return ln, false, err
	}
	var terr error
	lc := net.ListenConfig{Control: transparentControl(&terr)}
	ln, err = lc.Listen(ctx, "tcp", addr)
	return ln, err == nil && terr == nil, err
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
