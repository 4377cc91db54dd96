package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/remora-mesh/remora/upstream"
)

// DefaultIdleTimeout closes a TCP proxy connection on which no data has
// moved in either direction for this long (Istio's tcp_proxy default).
const DefaultIdleTimeout = time.Hour

// TCPResult is what one proxied TCP connection moved.
type TCPResult struct {
	// Received counts bytes from downstream to upstream, Sent bytes from
	// upstream to downstream (Istio's istio_tcp_received/sent_bytes).
	Received, Sent int64
	// IdleTimeout is set when the idle timer closed the connection.
	IdleTimeout bool
	// Err is the first copy error other than EOF or a close this
	// function made, if any.
	Err error
}

// ForwardTCP copies bytes between down and up until both directions are
// done, then closes both. A direction that reaches EOF half-closes its
// destination (CloseWrite), as Envoy's tcp_proxy does; an error in one
// direction closes both. A *PeekedConn's pending bytes are written
// upstream first; then, between two *net.TCPConn (directly or under a
// *PeekedConn, *upstream.Conn or NetConn wrapper) the copy is a kernel
// splice through a 1 MiB pipe on Linux. idle closes the connection when
// no data moved for that long (zero means DefaultIdleTimeout, negative
// means never); it is checked by one timer, not per-read deadlines,
// using the kernel's TCP_INFO where available (its ages have jiffy
// resolution, so the close may come a few milliseconds early).
// ForwardTCP blocks until the connection is done; closing either conn
// from elsewhere ends it.
func ForwardTCP(down, up net.Conn, idle time.Duration) TCPResult {
	return ForwardTCPReporting(down, up, idle, 0, nil)
}

// TCPReportInterval is how often the running byte totals of a TCP
// connection are reported while it lasts, as Istio's tcp_reporting_duration
// (15 s) has Envoy report istio_tcp_sent/received_bytes_total.
const TCPReportInterval = 15 * time.Second

// ForwardTCPReporting is ForwardTCP that also calls report with the
// running totals every interval (zero means TCPReportInterval) while the
// connection lasts; no call runs after it returns. A nil report means
// none.
func ForwardTCPReporting(down, up net.Conn, idle, interval time.Duration, report func(received, sent int64)) TCPResult {
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	var pending []byte
	if p, ok := down.(*PeekedConn); ok {
		pending, p.pending, down = p.pending, nil, p.Conn
	}
	f := &forwarder{down: down, up: up}
	f.touch()
	if idle > 0 {
		f.idle = idle
		f.timer = time.AfterFunc(idle, f.checkIdle)
	}
	upward := &copier{f: f, dst: up, src: down, pending: pending}
	downward := &copier{f: f, dst: down, src: up}
	stopReports := startReports(interval, report, upward, downward)
	done := make(chan struct{})
	go downward.run(done)
	upward.run(nil)
	<-done
	stopReports()
	if f.timer != nil {
		f.timer.Stop()
	}
	f.closeBoth()
	res := TCPResult{Received: upward.n.Load(), Sent: downward.n.Load(), IdleTimeout: f.idled.Load()}
	res.Err = errors.Join(upward.err, downward.err)
	return res
}

// startReports calls report with the copiers' totals every interval
// until the returned stop, after which no call is running or will run.
func startReports(interval time.Duration, report func(received, sent int64), upward, downward *copier) (stop func()) {
	if report == nil {
		return func() {}
	}
	if interval <= 0 {
		interval = TCPReportInterval
	}
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	t = time.AfterFunc(interval, func() {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			report(upward.n.Load(), downward.n.Load())
			t.Reset(interval)
		}
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}

// forwarder is the state the two copiers of one connection share.
type forwarder struct {
	down, up  net.Conn
	idle      time.Duration
	timer     *time.Timer
	last      atomic.Int64 // unix nanos of the last observed activity
	idled     atomic.Bool
	closeOnce sync.Once
	closed    atomic.Bool
}

func (f *forwarder) touch() { f.last.Store(time.Now().UnixNano()) }

func (f *forwarder) closeBoth() {
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		f.down.Close()
		f.up.Close()
	})
}

// checkIdle runs when the idle timer fires: it closes the connection if
// nothing moved for f.idle, else re-arms the timer for the remainder.
func (f *forwarder) checkIdle() {
	now := time.Now()
	quiet := now.Sub(time.Unix(0, f.last.Load()))
	for _, c := range [...]net.Conn{f.down, f.up} {
		if tc := tcpConn(c); tc != nil {
			if ms, ok := lastDataAge(tc); ok {
				quiet = min(quiet, time.Duration(ms)*time.Millisecond)
			}
		}
	}
	if quiet >= f.idle {
		f.idled.Store(true)
		f.closeBoth()
		return
	}
	f.timer.Reset(f.idle - quiet)
}

// copier moves one direction of a proxied connection. It exists, as in
// net/http, so the goroutines have useful names in stack traces.
type copier struct {
	f        *forwarder
	dst, src net.Conn
	// pending are bytes to write before copying (peeked by detection).
	pending []byte
	n       atomic.Int64
	err     error
}

// run copies src to dst until EOF or an error, then half-closes dst (on
// EOF) or closes both (on an error). done, if non-nil, is closed at the
// end.
func (c *copier) run(done chan struct{}) {
	if done != nil {
		defer close(done)
	}
	err := c.copy()
	switch {
	case err == nil:
		if closeWrite(c.dst) == nil {
			return
		}
		c.f.closeBoth()
	default:
		if !c.f.closed.Load() {
			c.err = err
		}
		c.f.closeBoth()
	}
}

// copy moves the bytes, splicing between TCP sockets (spliceCopy) once
// any peeked bytes are written. It returns nil at EOF.
func (c *copier) copy() error {
	src := c.src
	if len(c.pending) > 0 {
		n, err := c.dst.Write(c.pending)
		c.n.Add(int64(n))
		c.pending = nil
		if err != nil {
			return err
		}
	}
	dtc, stc := tcpConn(c.dst), tcpConn(src)
	if dtc == nil || stc == nil {
		return copyCounting(c.dst, src, c.moved)
	}
	return spliceCopy(dtc, stc, c.moved)
}

// moved counts n bytes copied and records the activity.
func (c *copier) moved(n int64) {
	c.n.Add(n)
	c.f.touch()
}

// closeWrite half-closes c, through wrappers that lack CloseWrite.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	if tc := tcpConn(c); tc != nil {
		return tc.CloseWrite()
	}
	return errors.ErrUnsupported
}

// copyCounting copies src to dst until EOF through a user-space buffer,
// reporting every read's size to moved: the copy for conns that cannot
// splice.
func copyCounting(dst io.Writer, src io.Reader, moved func(n int64)) error {
	_, err := io.Copy(dst, &activityReader{r: src, moved: moved})
	return err
}

// activityReader reports every read's size to moved, for copies that
// cannot splice.
type activityReader struct {
	r     io.Reader
	moved func(n int64)
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.moved(int64(n))
	}
	return n, err
}

// tcpConn returns the *net.TCPConn under c, looking through a
// *PeekedConn with nothing pending, *upstream.Conn, and wrappers that
// expose NetConn or TCPConn; nil if there is none, and nil for a
// *tls.Conn, whose bytes must not be spliced past the TLS layer.
func tcpConn(c net.Conn) *net.TCPConn {
	for range 4 {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case *PeekedConn:
			if len(v.pending) > 0 {
				return nil
			}
			c = v.Conn
		case *upstream.Conn:
			c = v.Conn
		case *tls.Conn: // the bytes must go through the TLS layer
			return nil
		case interface{ TCPConn() *net.TCPConn }:
			return v.TCPConn()
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
