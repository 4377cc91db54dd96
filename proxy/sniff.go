package proxy

import (
	"bytes"
	"errors"
	"net"
	"os"
	"time"
)

// DefaultSniffTimeout bounds protocol detection on ports whose protocol is
// not declared. Istio's protocolDetectionTimeout defaults to 0 (wait
// forever), which deadlocks server-first protocols (MySQL, SMTP) on
// undeclared ports: the client waits for the server's banner while the
// proxy waits for the client's first bytes. remora waits this long, then
// treats the connection as opaque TCP, as Envoy does on a listener-filter
// timeout (continue_on_listener_filters_timeout). HTTP and TLS clients
// write as soon as they connect, so they are classified well within it.
const DefaultSniffTimeout = 100 * time.Millisecond

// maxSniff caps the bytes protocol detection reads: enough for a long
// request line or a ClientHello split over two TLS records.
const maxSniff = 32 << 10

// maxRequestLine is the longest HTTP/1 request line detection accepts.
const maxRequestLine = 16 << 10

// Detected is the protocol protocol detection found.
type Detected uint8

// The outcomes of protocol detection.
const (
	// DetectedTCP is opaque bytes, HTTP/1.0 (as in Istio), or nothing
	// before the timeout.
	DetectedTCP Detected = iota
	// DetectedHTTP1 is an HTTP/1.1 request line.
	DetectedHTTP1
	// DetectedH2C is the HTTP/2 prior-knowledge preface.
	DetectedH2C
	// DetectedTLS is a TLS ClientHello.
	DetectedTLS
)

var detectedNames = [...]string{"tcp", "http/1.1", "h2c", "tls"}

// String returns the ALPN-style name Envoy's inspectors give: "tcp",
// "http/1.1", "h2c" or "tls".
func (d Detected) String() string {
	if int(d) < len(detectedNames) {
		return detectedNames[d]
	}
	return "unknown"
}

// IsHTTP reports whether d is served by the HTTP connection manager.
func (d Detected) IsHTTP() bool { return d == DetectedHTTP1 || d == DetectedH2C }

// Sniffed is what protocol detection learned from a connection's first
// bytes.
type Sniffed struct {
	Protocol Detected
	// SNI is the ClientHello's server name, lower-cased ("" for none).
	SNI string
}

// h2Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Sniff classifies b, the first bytes of a connection. more reports that
// b is a proper prefix of something that could still be HTTP/1.1, h2c or
// a complete ClientHello: the answer may change with more bytes. Sniff
// never reads past len(b).
func Sniff(b []byte) (s Sniffed, more bool) {
	if len(b) == 0 {
		return Sniffed{}, true
	}
	if b[0] == recordTypeHandshake {
		sni, err := ParseSNI(b)
		switch {
		case errors.Is(err, ErrShortHello):
			return Sniffed{Protocol: DetectedTLS}, true
		case errors.Is(err, ErrNotTLS):
			return Sniffed{}, false
		}
		return Sniffed{Protocol: DetectedTLS, SNI: sni}, false
	}
	if n := min(len(b), len(h2Preface)); string(b[:n]) == h2Preface[:n] {
		if n == len(h2Preface) {
			return Sniffed{Protocol: DetectedH2C}, false
		}
		return Sniffed{}, true
	}
	switch http1(b) {
	case verdictYes:
		return Sniffed{Protocol: DetectedHTTP1}, false
	case verdictMore:
		return Sniffed{}, true
	}
	return Sniffed{}, false
}

type verdict uint8

const (
	verdictNo verdict = iota
	verdictYes
	verdictMore
)

// http1 checks for "METHOD SP request-target SP HTTP/1.1 CRLF" (a bare
// LF ends the line too). HTTP/1.0 is not HTTP here: Istio's listeners do
// not serve it on sniffed ports.
func http1(b []byte) verdict {
	i := 0
	for ; i < len(b) && i < 24 && isMethodByte(b[i]); i++ {
	}
	switch {
	case i == len(b) && i < 24:
		return verdictMore
	case i == 0 || i >= 24 || b[i] != ' ':
		return verdictNo
	}
	i++
	start := i
	for ; i < len(b) && b[i] > ' ' && b[i] < 0x7f; i++ {
	}
	switch {
	case i == len(b):
		if i > maxRequestLine {
			return verdictNo
		}
		return verdictMore
	case i == start || b[i] != ' ':
		return verdictNo
	}
	rest := b[i+1:]
	const want = "HTTP/1.1\r\n"
	n := min(len(rest), len(want))
	if bytes.Equal(rest[:n], []byte(want[:n])) {
		if n == len(want) {
			return verdictYes
		}
		return verdictMore
	}
	if n > len("HTTP/1.1") && string(rest[:len("HTTP/1.1\n")]) == "HTTP/1.1\n" {
		return verdictYes
	}
	return verdictNo
}

// isMethodByte reports whether c may appear in a request method as
// clients send them (upper-case token letters, and '-' as in M-SEARCH).
func isMethodByte(c byte) bool { return c >= 'A' && c <= 'Z' || c == '-' || c == '_' }

// SniffConn reads the first bytes of c until Sniff decides, maxSniff
// bytes have arrived, or timeout has passed (zero means
// DefaultSniffTimeout), then returns the result and a connection that
// replays the bytes read. It sets one read deadline for the whole
// detection and clears it before returning. err is set only when the
// peer closed or failed before sending anything.
func SniffConn(c net.Conn, timeout time.Duration) (*PeekedConn, Sniffed, error) {
	if timeout <= 0 {
		timeout = DefaultSniffTimeout
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, Sniffed{}, err
	}
	buf := make([]byte, 0, 2048)
	var s Sniffed
	more := true
	var rerr error
	for more && len(buf) < maxSniff {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), maxSniff-len(buf)))...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			s, more = Sniff(buf)
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if more {
		s = Sniffed{} // undecided: opaque TCP, as on Envoy's timeout
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, Sniffed{}, err
	}
	if len(buf) == 0 && rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
		return nil, Sniffed{}, rerr
	}
	return &PeekedConn{Conn: c, pending: buf}, s, nil
}

// PeekedConn is a connection whose first bytes were read by protocol
// detection; Read returns them again before reading the socket. It is
// as safe for concurrent use as the connection it wraps, except that
// Read must not be called concurrently with itself.
type PeekedConn struct {
	net.Conn
	pending []byte
}

// Read returns the peeked bytes first, then reads the connection.
func (c *PeekedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Pending returns the peeked bytes not yet read.
func (c *PeekedConn) Pending() []byte { return c.pending }

// Unwrap returns the underlying connection when no peeked bytes are
// pending (so a *net.TCPConn can be spliced), else c itself.
func (c *PeekedConn) Unwrap() net.Conn {
	if len(c.pending) == 0 {
		return c.Conn
	}
	return c
}

// NetConn returns the wrapped connection, as tls.Conn's NetConn does.
func (c *PeekedConn) NetConn() net.Conn { return c.Conn }

// CloseWrite shuts down the writing side when the wrapped connection
// supports half-close.
func (c *PeekedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
