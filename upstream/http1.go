package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync/atomic"
	"time"

	"github.com/remora-mesh/remora/outlier"
)

// max1xx bounds the informational responses read before the final one.
const max1xx = 16

// aLongTimeAgo is a deadline in the past, to interrupt blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip sends one attempt of req to an endpoint it picks, enforcing
// the cluster's circuit breakers, and records the outcome for outlier
// detection. Closing the response body releases the request's slot.
//
// The request is sent as prepared: RoundTrip adds no header (it sets an
// empty User-Agent entry on req when there is none, which only stops Go's
// default from being written). req.Host is the authority; req.URL's path
// and query are the request target; req.URL's host is ignored. HTTP/1.1
// requests with a body are written while the response is read, so early
// answers and full-duplex streams work. Informational responses (1xx but
// 101) are passed to an httptrace.ClientTrace's Got1xxResponse in ctx; a
// 101 answer's Body is an io.ReadWriteCloser over the upgraded connection.
// Response trailers arrive in resp.Trailer after the body is read. A
// bodiless request that finds its pooled connection closed by the server
// is sent again on another (see roundTrip1).
//
// ctx bounds the whole exchange, body included: when it ends the
// connection is interrupted (pass a context without a per-try timeout for
// upgrades). RoundTrip is safe for concurrent use, but a given req must
// not be sent by two attempts at once.
//
// Errors: ErrNoHealthyUpstream and ErrOverflow (no request was sent),
// *ConnectError, *ResetError (its Err is ctx's error when ctx ended the
// attempt). The response body must be read to EOF or closed.
func (c *Cluster) RoundTrip(ctx context.Context, req *http.Request, opt AttemptOptions) (*http.Response, *Host, error) {
	s := c.set.Load()
	ep, err := c.pick(ctx, s, &opt)
	if err != nil {
		return nil, nil, err
	}
	if !c.startRequest(s, ep) {
		c.unref(ep)
		return nil, ep.host, ErrOverflow
	}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""}
	}
	var resp *http.Response
	if s.http2 {
		resp, err = c.roundTrip2(ctx, s, ep, req)
	} else {
		resp, err = c.roundTrip1(ctx, s, ep, req)
	}
	if err != nil {
		c.failed(ctx, ep, err)
		c.endRequest(ep)
		return nil, ep.host, err
	}
	c.record(ep, resp.StatusCode)
	return resp, ep.host, nil
}

// failed counts a failed attempt and reports it to outlier detection:
// resets as connect failures, per-try timeouts as timeouts; overflow,
// connect errors (reported by dial) and caller cancellation are not.
func (c *Cluster) failed(ctx context.Context, ep *endpoint, err error) {
	var ce *ConnectError
	if errors.Is(err, ErrOverflow) {
		return
	}
	ep.rqError.Add(1)
	switch {
	case errors.As(err, &ce):
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		ep.rqTimeout.Add(1)
		c.recordLocal(ep, outlier.Timeout)
	case ctx.Err() != nil:
	default:
		c.recordLocal(ep, outlier.ConnectFailed)
	}
}

// serverName is the TLS SNI for a request: the host of its authority.
func serverName(req *http.Request) string {
	h := req.Host
	if h == "" && req.URL != nil {
		h = req.URL.Host
	}
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

// roundTrip1 runs one HTTP/1.1 exchange on a pooled connection. A
// bodiless request on a connection reused without a liveness peek is sent
// again on another when that one turns out closed: unwritten, or, for an
// idempotent method, closed before any byte of an answer.
func (c *Cluster) roundTrip1(ctx context.Context, s *settings, ep *endpoint, req *http.Request) (*http.Response, error) {
	sni := ""
	if s.tls != nil {
		sni = serverName(req)
	}
	for {
		pc, err := c.getConn(ctx, s, ep, sni)
		if err != nil {
			return nil, err
		}
		pc.requests++
		unchecked := pc.unchecked
		resp, err := pc.exchange(ctx, s, req)
		if err == nil || !unchecked || !resendable(ctx, req, err) {
			return resp, err
		}
	}
}

// resendable reports whether a failed exchange of req on a connection the
// server had closed may be sent again.
func resendable(ctx context.Context, req *http.Request, err error) bool {
	var re *ResetError
	var nr *nothingReadError
	if ctx.Err() != nil || (req.Body != nil && req.Body != http.NoBody) || !errors.As(err, &re) {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return !re.Written || errors.As(err, &nr)
	}
	return !re.Written
}

// exchange writes req and reads the response head; the body wrapper owns
// the connection afterwards.
func (pc *pconn) exchange(ctx context.Context, s *settings, req *http.Request) (*http.Response, error) {
	pc.written.Store(0)
	stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(aLongTimeAgo) })
	wrote, err := pc.send(req)
	if err != nil {
		stop()
		pc.c.closeConn(pc)
		return nil, pc.resetError(ctx, err, false)
	}
	resp, err := pc.readResponse(ctx, req)
	if err != nil {
		stop()
		pc.c.closeConn(pc) // also ends writeLoop
		if wrote != nil {
			req.Body.Close() // unblock a writeLoop waiting on the body
		}
		return nil, pc.resetError(ctx, err, protocolError(err))
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &upgradeBody{pc: pc, stop: stop}
		return resp, nil
	}
	maxPer := s.limits.MaxRequestsPerConnection
	keep := !resp.Close && !req.Close && (maxPer == 0 || pc.requests < maxPer)
	resp.Body = &body{pc: pc, rc: resp.Body, stop: stop, wrote: wrote, keep: keep, reqBody: req.Body}
	return resp, nil
}

// send writes req's head, with its body when that is small and in
// memory, so that both go in one write. A larger or streamed body is
// written by a writeLoop while the response is read, so early answers
// and full-duplex streams work; wrote then receives its outcome. The
// body is closed once written, as net/http does.
func (pc *pconn) send(req *http.Request) (wrote chan error, err error) {
	f, err := requestFraming(req)
	if err == nil {
		err = writeHead(pc.bw, req, f)
	}
	if err != nil || f.length == 0 {
		closeBody(req)
		if err == nil {
			err = pc.bw.Flush()
		}
		return nil, err
	}
	mem := inMemory(req.Body)
	if mem && f.length > 0 && f.length <= int64(pc.bw.Available()) {
		err = writeBody(pc.bw, req, f)
		closeBody(req)
		return nil, err
	}
	if !mem { // the server may need the head before the body comes
		if err := pc.bw.Flush(); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	wrote = make(chan error, 1)
	go pc.writeLoop(req, f, wrote)
	return wrote, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// writeLoop writes a request body while the response is read. A failed
// write interrupts the read, as the response may never come.
func (pc *pconn) writeLoop(req *http.Request, f framing, done chan<- error) {
	err := writeBody(pc.bw, req, f)
	closeBody(req)
	if err != nil {
		pc.conn.SetDeadline(aLongTimeAgo)
	}
	done <- err
}

// readResponse reads the final response head, passing 1xx answers to the
// client trace.
func (pc *pconn) readResponse(ctx context.Context, req *http.Request) (*http.Response, error) {
	trace := httptrace.ContextClientTrace(ctx)
	for i := range max1xx {
		head, err := readHead(pc.br)
		if err != nil {
			var nr *nothingReadError
			if i > 0 && errors.As(err, &nr) {
				err = nr.err // an informational answer came before
			}
			return nil, err
		}
		resp, err := parseResponse(head, req, pc.br)
		if err != nil {
			return nil, err
		}
		code := resp.StatusCode
		if code >= 200 || code == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
	return nil, errors.New("too many 1xx responses")
}

// resetError describes a failed exchange; Written tells whether any byte
// of the request reached the socket.
func (pc *pconn) resetError(ctx context.Context, err error, protocol bool) error {
	if ctx.Err() != nil {
		err, protocol = ctx.Err(), false
	}
	return &ResetError{Addr: pc.ep.addr, Written: pc.written.Load() > 0, Protocol: protocol, Err: err}
}

// protocolError reports whether err is a malformed response rather than
// a connection failure.
func protocolError(err error) bool {
	var ne net.Error
	return !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!errors.As(err, &ne) && !errors.Is(err, net.ErrClosed)
}

// body is an HTTP/1.1 response body. At EOF it returns the connection to
// the pool when keep-alive allows; closed early it closes the connection.
// Either way it releases the request's slot once.
type body struct {
	pc      *pconn
	rc      io.ReadCloser
	stop    func() bool
	wrote   chan error // nil when the request was written before the read
	reqBody io.Closer  // closed if the answer completes before the request
	keep    bool
	done    atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

// Close releases the request; an unread body closes the connection.
func (b *body) Close() error {
	b.finish(b.rc == http.NoBody)
	return nil
}

func (b *body) finish(eof bool) {
	if !b.done.CompareAndSwap(false, true) {
		return
	}
	pc := b.pc
	stopped := b.stop()
	reuse := eof && b.keep && stopped
	if b.wrote != nil {
		select {
		case err := <-b.wrote:
			reuse = reuse && err == nil
		default: // the answer came before the request was fully sent
			reuse = false
			b.reqBody.Close()
		}
	}
	if reuse {
		pc.c.putIdle(pc)
	} else {
		pc.c.closeConn(pc)
	}
	pc.c.endRequest(pc.ep)
}

// upgradeBody is the body of a 101 answer: the upgraded connection, read
// from the buffered reader first. Close closes it and releases the slot.
type upgradeBody struct {
	pc   *pconn
	stop func() bool
	done atomic.Bool
}

func (u *upgradeBody) Read(p []byte) (int, error)  { return u.pc.br.Read(p) }
func (u *upgradeBody) Write(p []byte) (int, error) { return u.pc.conn.Write(p) }

// CloseWrite half-closes the upgraded connection when it supports it.
func (u *upgradeBody) CloseWrite() error {
	if cw, ok := u.pc.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the upgraded connection and releases the request's slot.
func (u *upgradeBody) Close() error {
	if u.done.CompareAndSwap(false, true) {
		u.stop()
		u.pc.c.closeConn(u.pc)
		u.pc.c.endRequest(u.pc.ep)
	}
	return nil
}
