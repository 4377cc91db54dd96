package proxy

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/remora-mesh/remora/internal/rawio"
)

// Limits on HTTP/1 request heads, Envoy's defaults.
const (
	// MaxRequestHeadersBytes is Envoy's max_request_headers_kb (60 KiB):
	// the request line and header lines together. Larger heads get 431.
	MaxRequestHeadersBytes = 60 << 10
	// MaxRequestHeaders is Envoy's max_headers_count: more header fields
	// get 431.
	MaxRequestHeaders = 100
	// RequestHeadersTimeout bounds the time from a request head's first
	// byte to its last; a slower client is disconnected (slowloris).
	// Envoy's request_headers_timeout is unset under Istio, where its
	// 5 minute stream_idle_timeout answers 408 instead: remora is
	// stricter and closes.
	RequestHeadersTimeout = 60 * time.Second
	// DownstreamIdleTimeout closes a keep-alive connection without a
	// request for this long: Envoy's HTTP connection manager idle_timeout
	// under Istio (1 h).
	DownstreamIdleTimeout = time.Hour
	// StreamIdleTimeout bounds the silence within a request body: Envoy's
	// stream_idle_timeout (5 min), which Istio keeps.
	StreamIdleTimeout = 5 * time.Minute
)

// inBufSize is the read buffer of a connection while it has bytes to
// parse; an idle connection holds none.
const inBufSize = 4 << 10

var inBufs = sync.Pool{New: func() any { b := make([]byte, inBufSize); return &b }}

// Connection states, for Shutdown.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// Events from a request's handler goroutine to its connection.
const (
	evBody uint8 = iota // the body was read whole: the socket is free to read
	evDone              // the response is finished
)

// h1conn is one plain downstream connection served by remora's own
// HTTP/1 codec. Its goroutine reads and parses request heads; each
// request runs on a goroutine of its own, so the connection's goroutine
// keeps a small stack and, once the body is read, waits on the socket:
// that wait notices a client that leaves (the request's context is
// canceled) and is also the wait for the next request. An idle
// connection holds no buffers.
type h1conn struct {
	h      *HTTPServer
	c      net.Conn
	raw    syscall.RawConn // nil when c is not a socket
	ci     *ConnInfo
	ctx    context.Context
	cancel context.CancelFunc
	proto  http.Request // carries ctx into each request
	remote string

	buf     *[]byte // buf[r:w] is read but not parsed; nil while idle
	r, w    int
	scan    int  // how far buf[r:w] was searched for the head's end
	started bool // a request was parsed: no HTTP/2 preface any more

	ev       chan uint8
	resp     h1writer
	state    atomic.Int32
	broken   bool // the body framing failed: close after the response
	closing  bool // set by the handler goroutine before evDone
	hijacked bool

	active    time.Time    // when the last request began
	bodyBytes int64        // request-body bytes bodyRead has read on this connection
	bodyMark  int64        // bodyBytes when bodyRead last moved the deadline (-1: never)
	bodyMoved bool         // bodyRead moved the deadline; the conn goroutine restores it
	finished  atomic.Int64 // unix nanos when the last answer was finished
	headWait  bool         // the read deadline is the head timeout's
	rn        int          // result of rawRead
	rerr      error
	readFn    func(uintptr) bool
}

// serveH1 serves c with the HTTP/1 codec until it closes.
func (h *HTTPServer) serveH1(c net.Conn, ci *ConnInfo) {
	if hc := h.newH1Conn(c, ci); hc != nil {
		hc.run()
	}
}

// newH1Conn prepares c for the codec; nil means the server is shutting
// down and c was closed.
func (h *HTTPServer) newH1Conn(c net.Conn, ci *ConnInfo) *h1conn {
	hc := &h1conn{h: h, c: c, ci: ci, ev: make(chan uint8, 2), active: time.Now(), bodyMark: -1}
	if pc, ok := c.(*PeekedConn); ok { // sniffed bytes become the first read
		b := make([]byte, max(inBufSize, len(pc.pending)))
		hc.c, hc.buf, hc.w = pc.Conn, &b, copy(b, pc.pending)
	}
	hc.c = rawio.Wrap(hc.c)
	if rc, ok := hc.c.(*rawio.Conn); ok {
		if raw, err := rc.SyscallConn(); err == nil {
			hc.raw, hc.readFn = raw, hc.rawRead
		}
	}
	hc.resp.hc = hc
	hc.ctx, hc.cancel = context.WithCancel(context.WithValue(context.Background(), connInfoKey{}, ci))
	hc.proto = *(&http.Request{}).WithContext(hc.ctx)
	if ci.Remote.IsValid() {
		hc.remote = ci.Remote.String()
	}
	if ci.Original.IsValid() {
		ci.original = ci.Original.String()
	}
	if !h.h1.add(hc) {
		hc.cancel()
		c.Close()
		return nil
	}
	return hc
}

// run serves the connection until it ends, then closes it.
func (hc *h1conn) run() {
	defer hc.h.h1.remove(hc)
	defer hc.c.Close()
	defer hc.cancel()
	_ = hc.c.SetReadDeadline(hc.active.Add(hc.h.idleTimeout()))
	hc.serve()
	hc.releaseIn()
}

// StartConn serves c on a goroutine of its own and calls done after the
// connection ended; the caller's goroutine may return at once. A plain
// connection's goroutine then starts with a small stack that waits on
// the socket, instead of keeping the accepting goroutine's frames for as
// long as the client keeps the connection open.
func (h *HTTPServer) StartConn(c net.Conn, ci *ConnInfo, done func()) {
	go func() {
		defer done()
		h.ServeConn(c, ci)
	}()
}

// serve is the connection's loop: parse a head, start its handler, wait
// on the socket.
func (hc *h1conn) serve() {
	pending := false // a handler is running
	for {
		hr, info, status, err := hc.next(pending)
		if pending {
			if err != nil {
				hc.cancel() // the client left, or sent garbage, mid-request
			}
			<-hc.ev // evDone
			pending = false
			if hc.closing || hc.hijacked {
				return
			}
		}
		switch {
		case errors.Is(err, errH2Preface):
			hc.serveH2()
			return
		case err != nil:
			return
		case status != 0:
			hc.reject(status)
			return
		}
		if !hc.state.CompareAndSwap(connIdle, connActive) {
			return // shut down
		}
		hc.active, pending = time.Now(), true
		hr.hc, hr.info = hc, info
		hc.h.workers.run(hr)
		switch {
		case info.connect || info.upgrade: // the handler may take the connection
			for <-hc.ev != evDone {
			}
			pending = false
			if hc.closing || hc.hijacked {
				return
			}
		case info.hasBody():
			<-hc.ev           // evBody: the socket is free again
			if hc.bodyMoved { // bodyRead moved the deadline: back to the idle timeout
				hc.bodyMoved = false
				_ = hc.c.SetReadDeadline(time.Now().Add(hc.h.idleTimeout()))
			}
		default:
			runtime.Gosched() // the worker first: this goroutine's next read can wait
		}
	}
}

// errH2Preface is next's signal that the connection speaks HTTP/2.
var errH2Preface = errors.New("HTTP/2 connection preface")

// next reads and parses the next request head. While a handler runs
// (pending), an error means the client went away.
func (hc *h1conn) next(pending bool) (*h1req, headInfo, int, error) {
	for {
		if hc.r < hc.w {
			head, status, err := hc.scanHead()
			switch {
			case err != nil || status != 0:
				return nil, headInfo{}, status, err
			case head != nil:
				return hc.parse(head)
			}
		}
		if err := hc.fill(pending); err != nil {
			return nil, headInfo{}, 0, err
		}
	}
}

// scanHead looks for a complete head in the buffer; a nil head without
// status or error means more bytes are needed. The first bytes of a
// connection may be the HTTP/2 preface instead.
func (hc *h1conn) scanHead() ([]byte, int, error) {
	in := (*hc.buf)[hc.r:hc.w]
	for len(in) >= 2 && in[0] == '\r' && in[1] == '\n' { // RFC 9112 §2.2
		hc.r += 2
		in = in[2:]
	}
	if !hc.started && hc.scan == 0 && len(in) > 0 && in[0] == 'P' {
		n := min(len(in), len(h2Preface))
		if string(in[:n]) == h2Preface[:n] {
			if n == len(h2Preface) {
				return nil, 0, errH2Preface
			}
			return nil, 0, nil
		}
	}
	if end := headEnd(in, hc.scan); end >= 0 {
		return in[:end], 0, nil
	}
	hc.scan = max(len(in)-3, 0)
	if len(in) > MaxRequestHeadersBytes {
		return nil, http.StatusRequestHeaderFieldsTooLarge, nil
	}
	if len(in) > 0 && !hc.headWait {
		hc.headWait = true // a head began and did not come whole: the slowloris bound
		_ = hc.c.SetReadDeadline(time.Now().Add(hc.h.headersTimeout()))
	}
	return nil, 0, nil
}

// parse turns a complete head into a request.
func (hc *h1conn) parse(head []byte) (*h1req, headInfo, int, error) {
	hc.r += len(head)
	hc.scan, hc.started = 0, true
	if hc.headWait {
		hc.headWait = false
		_ = hc.c.SetReadDeadline(time.Now().Add(hc.h.idleTimeout()))
	}
	if len(head) > MaxRequestHeadersBytes {
		return nil, headInfo{}, http.StatusRequestHeaderFieldsTooLarge, nil
	}
	hr := &h1req{req: hc.proto}
	info, status, _ := parseHead(string(head), hr)
	if status != 0 {
		return nil, info, status, nil
	}
	r := &hr.req
	if !parseTarget(r, &hr.url) {
		return nil, info, http.StatusBadRequest, nil
	}
	r.RemoteAddr, r.Close = hc.remote, info.close
	r.Body = http.NoBody
	switch {
	case info.chunked:
		r.ContentLength, r.TransferEncoding = -1, chunkedCoding
	case info.length > 0:
		r.ContentLength = info.length
	}
	if info.hasBody() {
		hr.body = h1body{hc: hc, req: r, remain: info.length, chunked: info.chunked, expect: info.expect}
		r.Body = &hr.body
		declareTrailers(r)
	}
	return hr, info, 0, nil
}

// chunkedCoding is Request.TransferEncoding of a chunked request (shared:
// nothing appends to it).
var chunkedCoding = []string{"chunked"}

// declareTrailers pre-fills Request.Trailer with the keys the Trailer
// field announces, as net/http does.
func declareTrailers(r *http.Request) {
	for _, v := range r.Header["Trailer"] {
		for _, k := range splitComma(v) {
			if r.Trailer == nil {
				r.Trailer = http.Header{}
			}
			r.Trailer[canonicalKey(k)] = nil
		}
	}
}

// fill reads more of the connection; while nothing is buffered it waits
// without a buffer. The idle timeout counts from the last request.
func (hc *h1conn) fill(pending bool) error {
	for {
		n, err := hc.read()
		if n > 0 {
			hc.w += n
			return nil
		}
		if err != nil && isTimeout(err) && !hc.headWait {
			if wait, ok := hc.idleLeft(pending); ok {
				_ = hc.c.SetReadDeadline(time.Now().Add(wait))
				continue
			}
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
}

// isTimeout reports whether err is a passed deadline. Its own function, so
// the error target is only allocated when there is an error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// idleLeft is how much longer the connection may wait for its next
// request when its read deadline passed; ok is false when it has been
// idle for the idle timeout. A request still being answered is not
// idleness, and the idle time counts from the end of the last answer.
func (hc *h1conn) idleLeft(pending bool) (time.Duration, bool) {
	limit := hc.h.idleTimeout()
	if pending && hc.state.Load() == connActive {
		return limit, true
	}
	since := hc.active
	if f := hc.finished.Load(); f > since.UnixNano() {
		since = time.Unix(0, f)
	}
	if idle := time.Since(since); idle < limit {
		return limit - idle, true
	}
	return 0, false
}

// read reads into buf[w:], making room first.
func (hc *h1conn) read() (int, error) {
	if hc.r == hc.w {
		hc.r, hc.w, hc.scan = 0, 0, 0
		if hc.raw != nil {
			hc.releaseIn()
			hc.rn, hc.rerr = 0, nil
			if err := hc.raw.Read(hc.readFn); err != nil {
				return 0, err
			}
			if hc.rn == 0 && hc.rerr == nil {
				return 0, io.EOF
			}
			return hc.rn, hc.rerr
		}
	}
	hc.makeRoom()
	return hc.c.Read((*hc.buf)[hc.w:])
}

// rawRead is the socket read of an empty buffer: it takes a buffer only
// when bytes are there, and reports false (wait) on EAGAIN.
func (hc *h1conn) rawRead(fd uintptr) bool {
	if hc.buf == nil {
		hc.buf = inBufs.Get().(*[]byte)
	}
	for {
		n, errno := rawio.SysRead(fd, *hc.buf)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			hc.releaseIn()
			return false
		case 0:
			hc.rn = n
		default:
			hc.rerr = errno
		}
		return true
	}
}

// makeRoom compacts or grows buf so a read has space.
func (hc *h1conn) makeRoom() {
	if hc.buf == nil {
		hc.buf = inBufs.Get().(*[]byte)
	}
	b := *hc.buf
	if hc.w < len(b) {
		return
	}
	if hc.r > 0 {
		copy(b, b[hc.r:hc.w])
		hc.w -= hc.r
		hc.scan, hc.r = max(hc.scan-hc.r, 0), 0
		return
	}
	nb := make([]byte, min(2*len(b), MaxRequestHeadersBytes+inBufSize))
	copy(nb, b[:hc.w])
	hc.releaseIn()
	hc.buf = &nb
}

// fillBody reads more of a request body into the buffer (chunked
// framing lines).
func (hc *h1conn) fillBody() error {
	if hc.r == hc.w {
		hc.r, hc.w = 0, 0
	}
	hc.makeRoom()
	n, err := hc.bodyRead((*hc.buf)[hc.w:])
	hc.w += n
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// bodyRead reads request-body bytes off the socket. The connection's read
// deadline is its idle timeout, set when it was last armed; passing it in
// the middle of a body is not idleness: the deadline moves on by
// StreamIdleTimeout as long as bytes keep coming, and a body silent for
// that long fails.
func (hc *h1conn) bodyRead(p []byte) (int, error) {
	for {
		n, err := hc.c.Read(p)
		hc.bodyBytes += int64(n)
		if n == 0 && err != nil && isTimeout(err) && hc.bodyBytes != hc.bodyMark {
			hc.bodyMark, hc.bodyMoved = hc.bodyBytes, true
			_ = hc.c.SetReadDeadline(time.Now().Add(StreamIdleTimeout))
			continue
		}
		return n, err
	}
}

// releaseIn returns an empty read buffer of the standard size to the
// pool.
func (hc *h1conn) releaseIn() {
	if hc.buf == nil || hc.r < hc.w {
		return
	}
	if len(*hc.buf) == inBufSize {
		inBufs.Put(hc.buf)
	}
	hc.buf, hc.r, hc.w, hc.scan = nil, 0, 0, 0
}

// bodyDone is the body reader's signal that the socket is free.
func (hc *h1conn) bodyDone() { hc.ev <- evBody }

// handle runs one request on a worker goroutine and finishes its
// response.
func (hc *h1conn) handle(hr *h1req) {
	info := hr.info
	w := &hc.resp
	w.reset(&hr.req, info.close)
	ok := hc.serveSafely(w, &hr.req, 0)
	keep := ok && w.finish()
	hc.hijacked = ok && w.hijacked
	if !hc.hijacked && info.hasBody() && !hr.body.done {
		keep = keep && hr.body.discard()
		if !hr.body.done {
			hc.bodyDone()
		}
	}
	if !keep || hc.broken || info.connect {
		hc.closing = true
		if !hc.hijacked {
			_ = hc.c.Close()
		}
	}
	w.release()
	hc.finished.Store(time.Now().UnixNano())
	hc.state.CompareAndSwap(connActive, connIdle)
	hc.ev <- evDone
}

// reject answers a head Envoy's codec refuses and ends the connection.
func (hc *h1conn) reject(status int) {
	hr := &h1req{req: hc.proto}
	r := &hr.req
	r.Method, r.Proto, r.ProtoMajor, r.ProtoMinor, r.RequestURI = http.MethodGet, "HTTP/1.1", 1, 1, "/"
	hr.url.Path, r.URL, r.Header, r.Body, r.RemoteAddr = "/", &hr.url, http.Header{}, http.NoBody, hc.remote
	w := &hc.resp
	w.reset(r, true)
	if hc.serveSafely(w, r, status) {
		w.finish()
	}
	w.release()
}

// serveH2 hands an HTTP/2 (prior knowledge) connection to net/http's
// server, with the bytes already read.
func (hc *h1conn) serveH2() {
	var pending []byte
	if hc.buf != nil {
		pending = append(pending, (*hc.buf)[hc.r:hc.w]...)
	}
	hc.r = hc.w
	hc.h.serveStd(&PeekedConn{Conn: hc.c, pending: pending}, hc.ci)
}

// serveSafely runs the chain, and like net/http's server turns a panic
// into a log line and a closed connection instead of a dead process; it
// reports whether the chain returned normally.
func (hc *h1conn) serveSafely(w *h1writer, r *http.Request, reject int) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			log.Printf("remora: panic serving %s: %v\n%s", hc.remote, v, debug.Stack())
			ok = false
		}
	}()
	hc.h.serveHTTP(w, r, hc.ci, reject)
	return true
}
