package proxy

import (
	"context"
	"errors"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/telemetry"
)

// httpFeed is an http.Server fed connections one by one: plain ones
// (HTTP/1.1 and h2c) or *tls.Conn after the handshake (HTTP/1.1, or
// HTTP/2 when ALPN chose h2), so net/http sets Request.TLS.
type httpFeed struct {
	srv    *http.Server
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
	start  sync.Once
}

type gwListenerKey struct{}

func newHTTPFeed(h http.Handler, secure bool, l *gwListener) *httpFeed {
	f := &httpFeed{conns: make(chan net.Conn), closed: make(chan struct{})}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if secure {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	f.srv = &http.Server{
		Handler:           h,
		Protocols:         p,
		ReadHeaderTimeout: 60 * time.Second,
		IdleTimeout:       time.Hour,
		MaxHeaderBytes:    60 << 10,
		ErrorLog:          debugLog(l.g.log()), // per-connection noise
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			ci := &ConnInfo{Snapshot: l.g.Store.Load(), Original: addrPortOf(c.LocalAddr()), Port: l.port, Remote: addrPortOf(c.RemoteAddr())}
			ctx = context.WithValue(ctx, connInfoKey{}, ci)
			return context.WithValue(ctx, gwListenerKey{}, l)
		},
	}
	return f
}

// debugLog adapts log to net/http's ErrorLog at debug level.
func debugLog(log *zap.Logger) *stdlog.Logger {
	l, err := zap.NewStdLogAt(log, zap.DebugLevel)
	if err != nil {
		return stdlog.New(io.Discard, "", 0)
	}
	return l
}

// serve hands c to the server, which owns it from then on; false means
// the feed is shut down and c was not taken.
func (f *httpFeed) serve(c net.Conn) bool {
	f.start.Do(func() { go func() { _ = f.srv.Serve(f) }() })
	select {
	case f.conns <- c:
		return true
	case <-f.closed:
		return false
	}
}

// shutdown lets requests in flight finish until ctx ends, then closes
// the connections.
func (f *httpFeed) shutdown(ctx context.Context) {
	f.start.Do(func() {}) // never started: nothing to drain
	err := f.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		_ = f.srv.Close()
	}
	_ = f.Close()
}

// Accept implements net.Listener for the http.Server.
func (f *httpFeed) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it stops new connections.
func (f *httpFeed) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// Addr implements net.Listener.
func (f *httpFeed) Addr() net.Addr { return &net.TCPAddr{} }

// gatewayHandler applies the Gateway servers to a request before the
// HTTP chain: a host outside the servers' hosts, or one no VirtualService
// routes on the port (from a namespace the server host's "ns/" part
// allows), answers 404 (flag NR) as Envoy's gateway vhosts do, never
// passthrough; an httpsRedirect server answers plain-HTTP
// requests 301 to https.
type gatewayHandler struct{ l *gwListener }

// ServeHTTP implements http.Handler.
func (gh *gatewayHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l := gh.l
	h := l.g.HTTP
	ci := connInfo(r)
	set := l.set.Load()
	host := strings.ToLower(hostOnly(r.Host))
	var srv *gwServer
	if r.TLS != nil {
		if s := set.bySNI(strings.ToLower(r.TLS.ServerName)); s != nil && s.hostMatches(host) {
			srv = s
		}
	} else {
		for _, s := range set.servers {
			if s.hostMatches(host) {
				srv = s
				break
			}
		}
	}
	if srv != nil && srv.redirect && r.TLS == nil {
		gh.localReply(w, r, ci, http.StatusMovedPermanently, "https://"+r.Host+r.URL.RequestURI(), 0)
		return
	}
	if srv == nil || !gh.routed(srv, host, r.Host, ci) {
		gh.localReply(w, r, ci, http.StatusNotFound, "", telemetry.NoRouteFound)
		return
	}
	h.ServeHTTP(w, r)
}

// routed reports whether a VirtualService that srv exposes routes
// authority on the listener's port.
func (gh *gatewayHandler) routed(srv *gwServer, host, authority string, ci *ConnInfo) bool {
	snap := gh.l.g.HTTP.snapshot(ci)
	if snap == nil || snap.Routes == nil {
		return true // the chain answers "no configuration loaded"
	}
	vh := snap.Routes.VirtualHost(gh.l.port, authority)
	return vh != nil && srv.allows(host, vh.VirtualServices)
}

// localReply answers r from the gateway itself, recorded like the HTTP
// chain's own local replies.
func (gh *gatewayHandler) localReply(w http.ResponseWriter, r *http.Request, ci *ConnInfo, status int, location string, flags telemetry.ResponseFlags) {
	h := gh.l.g.HTTP
	st := &reqState{h: h, w: w, r: r, ci: ci, snap: h.snapshot(ci), start: time.Now()}
	defer st.finish()
	st.flags |= flags
	h.serverHeader(w, ci)
	if location != "" {
		w.Header().Set("Location", location)
	}
	st.localReply(status, "", -1)
}

// hostOnly strips the port from a Host header value.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}
