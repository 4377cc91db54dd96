package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// gwListener is one bound gateway port.
type gwListener struct {
	g    *Gateway
	lg   *zap.Logger // g's logger with the listener's name
	name string
	port uint32
	ln   net.Listener
	set  atomic.Pointer[gwPortSet]
	// plain serves HTTP/1.1 and h2c, secure HTTP over terminated TLS.
	plain, secure *httpFeed
	// ctx ends forwarded TCP connections at the end of a shutdown.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and TCP connections
}

func newGWListener(g *Gateway, name string, port uint32, ln net.Listener) *gwListener {
	l := &gwListener{g: g, name: name, port: port, ln: ln}
	l.lg = g.log().With(zap.String("listener", name))
	l.ctx, l.cancel = context.WithCancel(context.Background())
	h := &gatewayHandler{l: l}
	l.plain = newHTTPFeed(h, false, l)
	l.secure = newHTTPFeed(h, true, l)
	return l
}

func (l *gwListener) log() *zap.Logger { return l.lg }

// acceptLoop accepts until the listener is closed.
func (l *gwListener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off and retry, as net/http does.
			l.log().Warn("accept", zap.Error(err))
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		l.wg.Add(1)
		go l.serveConn(c)
	}
}

// serveConn dispatches one accepted connection by the port's kind.
func (l *gwListener) serveConn(c net.Conn) {
	defer l.wg.Done()
	set := l.set.Load()
	switch set.kind {
	case kindHTTP:
		if !l.plain.serve(c) {
			c.Close()
		}
	case kindTLS:
		l.serveTLS(c, set)
	default:
		rec := l.record(c)
		res := l.routes().MatchTCP(routing.Conn{DstIP: rec.Info.Original.Addr(), Port: l.port})
		l.forward(c, res, rec)
	}
}

func (l *gwListener) routes() *routing.Table {
	if s := l.g.Store.Load(); s != nil && s.Routes != nil {
		return s.Routes
	}
	return &routing.Table{}
}

// record starts the TCP record of a connection.
func (l *gwListener) record(c net.Conn) *TCPRecord {
	ci := &ConnInfo{Snapshot: l.g.Store.Load(), Original: addrPortOf(c.LocalAddr()), Port: l.port, Remote: addrPortOf(c.RemoteAddr())}
	return &TCPRecord{Info: ci, Start: time.Now()}
}

// serveTLS reads the ClientHello, picks the server by SNI, and passes
// the connection through or terminates it.
func (l *gwListener) serveTLS(c net.Conn, set *gwPortSet) {
	timeout := l.g.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	rec := l.record(c)
	rec.Detected = DetectedTLS
	log := l.log()
	if log.Core().Enabled(zap.DebugLevel) { // zap encodes With fields eagerly
		log = log.With(zap.Stringer("remote", rec.Info.Remote))
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	// A shutdown ends a connection still in its handshake.
	stop := context.AfterFunc(l.ctx, func() { c.Close() })
	defer stop()
	pc, sni, err := peekClientHello(c)
	if err != nil {
		log.Debug("closing: no TLS ClientHello", zap.Error(err))
		c.Close()
		return
	}
	rec.SNI = sni
	srv := set.bySNI(sni)
	if srv == nil {
		log.Debug("closing: no gateway server for the SNI", zap.String("sni", sni))
		rec.Flags = telemetry.NoRouteFound
		c.Close()
		l.finish(rec)
		return
	}
	if srv.passthrough {
		stop()
		_ = c.SetDeadline(time.Time{})
		res := l.routes().MatchTLS(routing.Conn{DstIP: rec.Info.Original.Addr(), Port: l.port, SNI: sni})
		l.forward(pc, res, rec)
		return
	}
	tc := tls.Server(pc, srv.tls.config())
	if err := tc.HandshakeContext(l.ctx); err != nil {
		log.Debug("tls handshake", zap.String("sni", sni), zap.Error(err))
		c.Close()
		return
	}
	if !stop() {
		return // shutting down: closed
	}
	_ = c.SetDeadline(time.Time{})
	if srv.proto == config.HTTPS {
		if !l.secure.serve(tc) {
			tc.Close()
		}
		return
	}
	res := l.routes().MatchTCP(routing.Conn{DstIP: rec.Info.Original.Addr(), Port: l.port, SNI: sni})
	l.forward(tc, res, rec)
}

// peekClientHello reads c until the TLS ClientHello is complete and
// returns its server name with a connection that replays what was read.
func peekClientHello(c net.Conn) (*PeekedConn, string, error) {
	buf := make([]byte, 0, 2048)
	for len(buf) < maxSniff {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), maxSniff-len(buf)))...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			sni, perr := ParseSNI(buf)
			switch {
			case perr == nil:
				return &PeekedConn{Conn: c, pending: buf}, sni, nil
			case !errors.Is(perr, ErrShortHello):
				return nil, "", perr
			}
		}
		if err != nil {
			return nil, "", err
		}
	}
	return nil, "", ErrNotTLS
}

// forward dials the matched route's cluster and copies bytes until the
// connection ends; with no route it closes the connection (flag NR).
func (l *gwListener) forward(c net.Conn, res routing.L4Result, rec *TCPRecord) {
	defer c.Close()
	defer l.finish(rec)
	var d *routing.Destination
	if res.Outcome == routing.Matched {
		d = res.Route.Pick(rand.Uint64())
	}
	if d == nil {
		rec.Flags = telemetry.NoRouteFound
		return
	}
	rec.Cluster = d.Cluster
	cl := l.g.Upstream.Cluster(d.Cluster)
	if cl == nil {
		rec.Flags = telemetry.NoClusterFound
		return
	}
	ctx, cancel := context.WithCancel(l.ctx)
	defer cancel()
	up, h, err := cl.DialTCP(ctx, upstream.AttemptOptions{Original: rec.Info.Original})
	if err != nil {
		rec.Flags = flagFor(err)
		l.log().Debug("upstream dial", zap.String("cluster", d.Cluster), zap.Error(err))
		return
	}
	if h != nil {
		rec.UpstreamHost = h.Addr
	}
	rec.UpstreamLocal = addrPortOf(up.LocalAddr())
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	recordTCPOpen(l.g.Telemetry, &l.g.Local, rec)
	rec.Result = ForwardTCP(c, up, l.g.IdleTimeout)
}

func (l *gwListener) finish(rec *TCPRecord) {
	rec.Duration = time.Since(rec.Start)
	l.log().Debug("tcp done", zap.String("cluster", rec.Cluster), zap.String("sni", rec.SNI), zap.String("upstream", rec.UpstreamHost),
		zap.Stringer("flags", rec.Flags), zap.Int64("received", rec.Result.Received), zap.Int64("sent", rec.Result.Sent))
	idle := l.g.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	recordTCPClose(l.g.Telemetry, &l.g.Local, rec, idle)
	if l.g.OnTCP != nil {
		l.g.OnTCP(rec)
	}
}

// shutdown closes the listener, lets HTTP requests and TCP connections
// finish until ctx ends, then closes them.
func (l *gwListener) shutdown(ctx context.Context) {
	l.ln.Close()
	var wg sync.WaitGroup
	for _, f := range []*httpFeed{l.plain, l.secure} {
		wg.Add(1)
		go func() { defer wg.Done(); f.shutdown(ctx) }()
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		l.cancel()
		<-done
	}
	l.cancel()
	wg.Wait()
}
