package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// HTTPServer serves HTTP/1.1 and HTTP/2 (h2c prior knowledge) on the
// connections listeners hand it, through the route → fault → CORS →
// timeout/retry/mirror → upstream chain. Its fields are set before the
// first ServeConn and not changed after.
type HTTPServer struct {
	// Store is read once per request; nil means use the connection's
	// ConnInfo.Snapshot.
	Store *snapshot.Store
	// Upstream holds the live clusters. It must not be nil.
	Upstream *upstream.Manager
	// Telemetry records each request; nil means none.
	Telemetry *telemetry.Telemetry
	// Local holds the Istio labels of this proxy's own workload: the
	// source of outbound requests (reporter "source"); inbound records
	// move it to the destination side.
	Local telemetry.Labels
	// Rand is the random source for weighted picks, fault percentages,
	// mirror percentages, back-off jitter and request IDs; nil means
	// math/rand/v2.
	Rand func() uint64
	// Gateway is set when the proxy is a gateway (server header
	// istio-envoy, x-forwarded-for appended).
	Gateway bool
	// ShadowSuffix adds Envoy's "-shadow" suffix to mirrored hosts, as
	// Istio did before 1.28. Off by default.
	ShadowSuffix bool
	// HeadersTimeout bounds the time to receive a request head once its
	// first byte arrived (slowloris); zero means RequestHeadersTimeout.
	HeadersTimeout time.Duration
	// IdleTimeout closes an HTTP/1 keep-alive connection without a
	// request for this long; zero means DownstreamIdleTimeout.
	IdleTimeout time.Duration
	// Resolver resolves explicit-proxy authorities outside the registry
	// (ALLOW_ANY passthrough, CONNECT); nil means net.DefaultResolver.
	Resolver *net.Resolver
	// MirrorLimit bounds the bytes of request bodies buffered for mirrors
	// at any moment; zero means 16 MiB.
	MirrorLimit int64

	h1       h1conns // connections on remora's HTTP/1 codec
	workers  workers // goroutines that run their requests
	once     sync.Once
	srv      *http.Server
	conns    chan net.Conn
	closed   chan struct{}
	mirrorMu sync.Mutex
	mirrored int64
}

type connInfoKey struct{}

// infoConn carries a connection's ConnInfo into net/http's handlers and
// tells ServeConn when the connection is closed.
type infoConn struct {
	net.Conn
	ci   *ConnInfo
	done chan struct{}
	once sync.Once
}

func (c *infoConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

func (h *HTTPServer) init() {
	h.once.Do(func() {
		h.conns = make(chan net.Conn)
		h.closed = make(chan struct{})
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		h.srv = &http.Server{
			Handler:           h,
			Protocols:         p,
			ReadHeaderTimeout: h.headersTimeout(),
			IdleTimeout:       time.Hour,
			MaxHeaderBytes:    MaxRequestHeadersBytes,
			HTTP2:             http2Limits(),
			ErrorLog:          nil,
			ConnContext: func(ctx context.Context, c net.Conn) context.Context {
				if ic, ok := c.(*infoConn); ok {
					return context.WithValue(ctx, connInfoKey{}, ic.ci)
				}
				return ctx
			},
		}
		go func() { _ = h.srv.Serve(&chanListener{h: h}) }()
	})
}

// ServeConn serves HTTP on c until the connection is closed, then
// returns. Plain connections run on remora's own HTTP/1 codec, which
// hands those that open with the HTTP/2 preface to net/http's server;
// TLS connections go to net/http's server directly. It is safe for
// concurrent use.
func (h *HTTPServer) ServeConn(c net.Conn, ci *ConnInfo) {
	if _, ok := c.(*tls.Conn); ok {
		h.serveStd(c, ci)
		return
	}
	h.serveH1(c, ci)
}

// serveStd serves c on net/http's server (HTTP/2, TLS).
func (h *HTTPServer) serveStd(c net.Conn, ci *ConnInfo) {
	h.init()
	ic := &infoConn{Conn: c, ci: ci, done: make(chan struct{})}
	select {
	case h.conns <- ic:
	case <-h.closed:
		c.Close()
		return
	}
	<-ic.done
}

// Shutdown stops serving: keep-alive connections are told to close
// (Connection: close, HTTP/2 GOAWAY), idle ones are closed, and in-flight
// requests may finish until ctx ends.
func (h *HTTPServer) Shutdown(ctx context.Context) error {
	h.init()
	h1 := make(chan error, 1)
	go func() { h1 <- h.h1.shutdown(ctx) }()
	err := h.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		_ = h.srv.Close()
	}
	return errors.Join(err, <-h1)
}

// chanListener feeds ServeConn's connections to the http.Server.
type chanListener struct{ h *HTTPServer }

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.h.conns:
		return c, nil
	case <-l.h.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	select {
	case <-l.h.closed:
	default:
		close(l.h.closed)
	}
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

func (h *HTTPServer) headersTimeout() time.Duration {
	if h.HeadersTimeout > 0 {
		return h.HeadersTimeout
	}
	return RequestHeadersTimeout
}

func (h *HTTPServer) idleTimeout() time.Duration {
	if h.IdleTimeout > 0 {
		return h.IdleTimeout
	}
	return DownstreamIdleTimeout
}

func (h *HTTPServer) rand() uint64 {
	if h.Rand != nil {
		return h.Rand()
	}
	return rand.Uint64()
}

func connInfo(r *http.Request) *ConnInfo {
	if ci, ok := r.Context().Value(connInfoKey{}).(*ConnInfo); ok {
		return ci
	}
	return &ConnInfo{}
}

func (h *HTTPServer) snapshot(ci *ConnInfo) *snapshot.Snapshot {
	if h.Store != nil {
		if s := h.Store.Load(); s != nil {
			return s
		}
	}
	return ci.Snapshot
}
