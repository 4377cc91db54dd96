package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// transport2 returns the cluster's HTTP/2 transport, creating it on first
// use: net/http's Transport limited to HTTP/2, with prior knowledge (h2c)
// for plaintext or over TLS with ALPN h2. Connections are dialled by dial2
// so they count against the cluster's connections and connect timeout.
func (c *Cluster) transport2(s *settings) *http.Transport {
	for {
		if t := c.h2.Load(); t != nil {
			return t
		}
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		p.SetHTTP2(true)
		dial := func(ctx context.Context, _, addr string) (net.Conn, error) { return c.dial2(ctx, addr) }
		t := &http.Transport{
			Protocols:          &p,
			DisableCompression: true,
			IdleConnTimeout:    s.idle,
			DialContext:        dial,
			DialTLSContext:     dial,
		}
		if c.h2.CompareAndSwap(nil, t) {
			return t
		}
	}
}

// dial2 opens an HTTP/2 connection to the endpoint at addr.
func (c *Cluster) dial2(ctx context.Context, addr string) (net.Conn, error) {
	ep := c.endpointByAddr(addr)
	if ep == nil {
		return nil, &ConnectError{Addr: addr, Err: errors.New("endpoint no longer in the cluster")}
	}
	s := c.set.Load()
	c.mu.Lock()
	c.reserveLocked(ep)
	c.mu.Unlock()
	sni := s.host
	conn, _, err := c.dial(ctx, s, ep, sni)
	if err != nil {
		c.unreserve(ep)
		return nil, err
	}
	return &conn2{Conn: conn, c: c, ep: ep}, nil
}

// conn2 is an HTTP/2 connection whose Close releases its slot once.
type conn2 struct {
	net.Conn
	c    *Cluster
	ep   *endpoint
	done atomic.Bool
}

func (cc *conn2) Close() error {
	err := cc.Conn.Close()
	if cc.done.CompareAndSwap(false, true) {
		cc.ep.cxActive.Add(-1)
		cc.c.unreserve(cc.ep)
	}
	return err
}

// roundTrip2 sends one HTTP/2 attempt through the cluster's transport to
// ep; the transport multiplexes requests on its connection.
func (c *Cluster) roundTrip2(ctx context.Context, s *settings, ep *endpoint, req *http.Request) (*http.Response, error) {
	if ep.network != "tcp" {
		return nil, &ConnectError{Addr: ep.addr, Err: fmt.Errorf("HTTP/2 to %s endpoints is not supported", ep.network)}
	}
	t := c.transport2(s)
	r := req.WithContext(ctx)
	u := *req.URL
	u.Scheme, u.Host = "http", ep.addr
	if s.tls != nil {
		u.Scheme = "https"
	}
	r.URL = &u
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	resp, err := t.RoundTrip(r)
	if err != nil {
		return nil, h2Error(ctx, ep, err)
	}
	resp.Body = &body2{rc: resp.Body, c: c, ep: ep}
	return resp, nil
}

// h2Error maps a transport error: connect failures stay *ConnectError; the
// rest are resets, counted as written (the transport itself retries
// streams the server refused or never processed, when it can).
func h2Error(ctx context.Context, ep *endpoint, err error) error {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return &ResetError{Addr: ep.addr, Written: true, Err: err}
}

// body2 is an HTTP/2 response body; EOF or Close releases the request's
// slot once. Trailers arrive in the response's Trailer map at EOF.
type body2 struct {
	rc   io.ReadCloser
	c    *Cluster
	ep   *endpoint
	done atomic.Bool
}

func (b *body2) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish()
	}
	return n, err
}

// Close cancels the stream if it is unfinished and releases the request.
func (b *body2) Close() error {
	err := b.rc.Close()
	b.finish()
	return err
}

func (b *body2) finish() {
	if b.done.CompareAndSwap(false, true) {
		b.c.endRequest(b.ep)
	}
}
