package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/remora-mesh/remora/telemetry"
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
)

// maxChunkLine bounds a chunk-size line (with extensions) or a trailer
// line of a chunked request body.
const maxChunkLine = 4 << 10

type guardMode uint8

const (
	modeHead      guardMode = iota // expecting a request head
	modeBody                       // remain bytes of a Content-Length body
	modeChunkSize                  // a chunk-size line
	modeChunkData                  // remain bytes of chunk data
	modeChunkCRLF                  // the CRLF after chunk data
	modeTrailer                    // trailer lines up to the empty line
	modePass                       // no more framing: h2c, CONNECT, Upgrade
	modeDone                       // everything after a rejection: EOF
)

// h1Guard sits between a downstream connection and net/http's HTTP/1
// parser and passes on only request heads that Envoy's codec would
// accept. Go's parser accepts some smuggling shapes Envoy rejects (both
// Content-Length and Transfer-Encoding, obsolete line folding, bare LF
// line ends, duplicate equal Content-Lengths) and has no header count
// limit; the guard checks each head whole before net/http sees a byte of
// it, and follows body framing (Content-Length, chunked) so every head of
// a keep-alive connection is checked. A rejected head is replaced by a
// sentinel request carrying a per-connection secret, which ServeHTTP
// answers with Envoy's status and closes; nothing of it reaches an
// upstream. Bodies of known length pass without a copy.
//
// Connections that start with the HTTP/2 preface, CONNECT requests and
// Upgrade requests (after their body) pass unguarded: HTTP/2 has its own
// framing and limits, and a tunnel carries another protocol. A declined
// Upgrade leaves the rest of that connection to net/http's own checks.
type h1Guard struct {
	net.Conn
	buf       []byte // buf[r:w] is read but not yet passed on
	r, w      int
	out       []byte // checked bytes ready for net/http
	mode      guardMode
	remain    int64
	scan      int  // how far buf[r:] was scanned for the head's end
	started   bool // a byte of the current head has arrived
	seen      bool // a head was passed on: no h2c preface any more
	passAfter bool // switch to modePass after this request's body

	// slow fires RequestHeadersTimeout after a head that did not arrive
	// in one read began, and interrupts the read; gen tells it whether
	// that head is still the current one.
	slow        *time.Timer
	gen         atomic.Uint64
	headTimeout time.Duration

	// rej is set once, when a head is rejected; ServeHTTP reads it from
	// another goroutine.
	rej atomic.Pointer[rejection]
}

// rejection is why a head was refused and the sentinel's secret.
type rejection struct {
	status int
	why    string
	token  string
}

func newH1Guard(c net.Conn, headTimeout time.Duration) *h1Guard {
	return &h1Guard{Conn: c, buf: make([]byte, 4096), headTimeout: headTimeout}
}

// Read passes checked bytes on.
func (g *h1Guard) Read(p []byte) (int, error) {
	for {
		if len(g.out) > 0 {
			n := copy(p, g.out)
			g.out = g.out[n:]
			return n, nil
		}
		switch g.mode {
		case modeDone:
			return 0, io.EOF
		case modePass:
			if g.r < g.w {
				n := copy(p, g.buf[g.r:g.w])
				g.r += n
				return n, nil
			}
			return g.Conn.Read(p)
		case modeBody, modeChunkData:
			if n, err, ok := g.readBody(p); ok {
				return n, err
			}
			continue
		}
		progress := g.step()
		if progress {
			continue
		}
		if err := g.fill(); err != nil {
			return 0, err
		}
	}
}

// armHeadTimer starts the slowloris bound for the current head.
func (g *h1Guard) armHeadTimer() {
	gen := g.gen.Load()
	g.slow = time.AfterFunc(g.headTimeout, func() {
		if g.gen.Load() == gen {
			_ = g.Conn.SetReadDeadline(aLongTimeAgo)
		}
	})
}

// stopHeadTimer ends the bound once the head is complete.
func (g *h1Guard) stopHeadTimer() {
	g.gen.Add(1)
	g.started = false
	if g.slow != nil {
		g.slow.Stop()
		g.slow = nil
	}
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// readBody passes up to remain body bytes; ok is false when the body
// part is complete and the state machine moves on.
func (g *h1Guard) readBody(p []byte) (int, error, bool) {
	if g.remain == 0 {
		if g.mode == modeChunkData {
			g.mode = modeChunkCRLF
		} else {
			g.endMessage()
		}
		return 0, nil, false
	}
	if int64(len(p)) > g.remain {
		p = p[:g.remain]
	}
	var n int
	var err error
	if g.r < g.w {
		n = copy(p, g.buf[g.r:g.w])
		g.r += n
	} else {
		n, err = g.Conn.Read(p)
	}
	g.remain -= int64(n)
	return n, err, true
}

// endMessage is reached after a request's body (or its head when it has
// none).
func (g *h1Guard) endMessage() {
	g.mode = modeHead
	if g.passAfter {
		g.mode = modePass
	}
}

// fill reads more of the connection into buf, bounded by the head limit.
func (g *h1Guard) fill() error {
	if g.r == g.w {
		g.r, g.w, g.scan = 0, 0, 0
	}
	if g.w == len(g.buf) {
		if g.r > 0 {
			copy(g.buf, g.buf[g.r:g.w])
			g.w -= g.r
			g.scan, g.r = max(g.scan-g.r, 0), 0
		} else {
			nb := make([]byte, min(2*len(g.buf), MaxRequestHeadersBytes+4096))
			copy(nb, g.buf[:g.w])
			g.buf = nb
		}
	}
	if g.mode == modeHead && (g.started || g.r < g.w) && g.slow == nil {
		g.armHeadTimer()
	}
	n, err := g.Conn.Read(g.buf[g.w:])
	if n > 0 {
		g.started = g.started || g.mode == modeHead
		g.w += n
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// step advances the framing state machine over buffered bytes; it
// reports whether it made progress (produced output or changed state).
func (g *h1Guard) step() bool {
	in := g.buf[g.r:g.w]
	switch g.mode {
	case modeHead:
		return g.stepHead(in)
	case modeChunkSize:
		return g.stepChunkSize(in)
	case modeChunkCRLF:
		if len(in) < 2 {
			return false
		}
		if in[0] != '\r' || in[1] != '\n' {
			return g.badBody()
		}
		g.out, g.r, g.mode = in[:2], g.r+2, modeChunkSize
		return true
	case modeTrailer:
		return g.stepTrailer(in)
	}
	return false
}

// stepHead checks a complete request head, or waits for one.
func (g *h1Guard) stepHead(in []byte) bool {
	for len(in) >= 2 && in[0] == '\r' && in[1] == '\n' { // RFC 9112 §2.2: ignore empty lines first
		g.r += 2
		in = in[2:]
	}
	if !g.seen && g.scan == 0 && len(in) > 0 && in[0] == 'P' {
		n := min(len(in), len(h2Preface))
		if string(in[:n]) == h2Preface[:n] {
			if n == len(h2Preface) {
				g.mode = modePass
				return true
			}
			return false
		}
	}
	end := headEnd(in, g.scan)
	if end < 0 {
		g.scan = max(len(in)-3, 0)
		if len(in) > MaxRequestHeadersBytes {
			return g.rejectHead(431, "headers too large")
		}
		return false
	}
	if end > MaxRequestHeadersBytes {
		return g.rejectHead(431, "headers too large")
	}
	h, status, why := checkHead(in[:end])
	if status != 0 {
		return g.rejectHead(status, why)
	}
	g.out, g.r, g.scan = in[:end], g.r+end, 0
	switch {
	case h.connect:
		g.mode = modePass
	case h.chunked:
		g.mode = modeChunkSize
	case h.length > 0:
		g.mode, g.remain = modeBody, h.length
	default:
		g.mode = modeBody // zero remain: ends the message on the next Read
	}
	g.passAfter, g.seen = h.upgrade, true
	g.stopHeadTimer()
	return true
}

// headEnd returns the length of the head in b through its empty line
// (CRLF CRLF, or a bare LF pair, which checkHead then rejects), or -1;
// the search starts at from.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
	return -1
}

// rejectHead replaces the head with the sentinel request and stops
// reading the connection.
func (g *h1Guard) rejectHead(status int, why string) bool {
	var t [16]byte
	for i := range 2 {
		v := rand.Uint64()
		for j := range 8 {
			t[8*i+j] = byte(v >> (8 * j))
		}
	}
	rej := &rejection{status: status, why: why, token: hex.EncodeToString(t[:])}
	g.rej.Store(rej)
	g.out = []byte("GET / HTTP/1.1\r\nHost: remora.invalid\r\n" + rejectHeader + ": " + rej.token + "\r\n\r\n")
	g.mode, g.r, g.w = modeDone, 0, 0
	g.stopHeadTimer()
	return true
}

// badBody ends a chunked body whose framing is broken: net/http's chunked
// reader gets an invalid chunk and fails the request, and the connection
// ends there.
func (g *h1Guard) badBody() bool {
	g.out = []byte("x\r\n")
	g.mode, g.r, g.w = modeDone, 0, 0
	return true
}

// rejectHeader carries the sentinel's secret.
const rejectHeader = "X-Remora-Rejected"

// rejected reports the status to answer when r is this connection's
// sentinel request.
func (g *h1Guard) rejected(token string) (*rejection, bool) {
	rej := g.rej.Load()
	if rej == nil || token != rej.token {
		return nil, false
	}
	return rej, true
}

// guardConn puts an h1Guard in front of c, except for TLS connections,
// which net/http must see as *tls.Conn (gateway HTTPS servers): their
// HTTP/1 requests are left to net/http's own checks.
func guardConn(c net.Conn, headTimeout time.Duration) net.Conn {
	if _, ok := c.(*tls.Conn); ok {
		return c
	}
	return newH1Guard(c, headTimeout)
}

type guardKey struct{}

// connContext gives net/http's request contexts the connection's
// ConnInfo and guard.
func connContext(ctx context.Context, c net.Conn) context.Context {
	ic, ok := c.(*infoConn)
	if !ok {
		return ctx
	}
	ctx = context.WithValue(ctx, connInfoKey{}, ic.ci)
	if g, ok := ic.Conn.(*h1Guard); ok {
		ctx = context.WithValue(ctx, guardKey{}, g)
	}
	return ctx
}

// rejectedHead answers the guard's sentinel request with Envoy's reply to
// a codec error (the status and its text, connection closed, flag DPE);
// it reports whether r was one.
func (st *reqState) rejectedHead() bool {
	tok := st.r.Header.Get(rejectHeader)
	if tok == "" {
		return false
	}
	g, _ := st.r.Context().Value(guardKey{}).(*h1Guard)
	if g == nil {
		return false
	}
	rej, ok := g.rejected(tok)
	if !ok {
		return false
	}
	st.flags |= telemetry.DownstreamProtocolError
	st.r.Host, st.rreq.Path = "", "/"
	st.w.Header().Set("Connection", "close")
	st.localReply(rej.status, http.StatusText(rej.status), -1)
	return true
}

// tooManyHeaders reports whether an HTTP/2 request carries more header
// fields than Envoy's max_headers_count (HTTP/1 heads are counted by the
// guard).
func tooManyHeaders(r *http.Request) bool {
	if r.ProtoMajor < 2 {
		return false
	}
	n := 0
	for _, vs := range r.Header {
		n += len(vs)
	}
	return n > MaxRequestHeaders
}

// HTTP/2 limits of the downstream server.
const (
	// MaxConcurrentStreams bounds the streams one downstream HTTP/2
	// connection may have open. Envoy's default is 2^31-1 with its
	// overload manager as the real bound; remora serves each stream on a
	// goroutine, so it advertises a bound that gRPC clients multiplexing
	// many calls still stay well inside.
	MaxConcurrentStreams = 1000
	// MaxReadFrameSize is the largest HTTP/2 frame remora reads: the
	// protocol's initial 16 KiB, as Envoy advertises.
	MaxReadFrameSize = 16 << 10
)

// http2Limits is the downstream HTTP/2 configuration. net/http's server
// also bounds what Envoy's codec protections bound: queued control frames
// (SETTINGS and PING floods close the connection), rapid reset (handlers
// limited to the concurrent streams, resets answered without new
// goroutines), and header list size (MaxHeaderBytes).
func http2Limits() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          MaxConcurrentStreams,
		MaxReadFrameSize:              MaxReadFrameSize,
		MaxReceiveBufferPerConnection: 1 << 20,
		MaxReceiveBufferPerStream:     1 << 20,
		PingTimeout:                   15 * time.Second,
	}
}
