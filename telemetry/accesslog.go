package telemetry

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLogQueue is how many lines may wait for the writer when
// NewAccessLog is given zero.
const DefaultLogQueue = 8192

// FlushInterval is how often the writer wakes to write the lines recorded
// since its last write (Envoy flushes its access log every second).
// Between ticks recording a line costs its encoding and no wake-up or
// write; flushSize bytes waiting wake the writer early.
const FlushInterval = 200 * time.Millisecond

// flushSize is how many encoded bytes wake the writer before its tick.
const flushSize = 64 << 10

// AccessLog writes one JSON line per request or TCP connection with Istio's
// JSON field names (see appendEntry). Recording never blocks on the
// destination: the recording goroutine encodes its line into a shared
// buffer, or drops and counts it when the queue limit of lines is already
// waiting. One goroutine writes the buffer every FlushInterval, or as soon
// as flushSize bytes wait, so a line reaches the destination well within
// a second. A nil *AccessLog logs nothing. Safe for concurrent use.
type AccessLog struct {
	w       io.Writer
	closer  io.Closer // the file OpenAccessLog opened, or nil
	metrics *Metrics  // may be nil
	limit   int       // most lines waiting

	mu      sync.Mutex
	buf     []byte // encoded lines waiting for the writer
	pending int    // lines in buf
	closed  bool

	kick    chan struct{} // wakes the writer before the next tick
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
	once    sync.Once
	err     error // first write error; written by run before done closes
}

// OpenAccessLog opens Istio's meshConfig.accessLogFile destination: "" or
// "off" means no access log (nil, nil); "/dev/stdout" (or "stdout") and
// "/dev/stderr" (or "stderr") are the process's own streams; anything else
// is a file path, created if needed and opened for appending. m, if not
// nil, receives the drop and write-error counts.
func OpenAccessLog(dest string, m *Metrics) (*AccessLog, error) {
	switch dest {
	case "", "off":
		return nil, nil
	case "stdout", "/dev/stdout":
		return NewAccessLog(os.Stdout, 0, m), nil
	case "stderr", "/dev/stderr":
		return NewAccessLog(os.Stderr, 0, m), nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	l := NewAccessLog(f, 0, m)
	l.closer = f
	return l, nil
}

// NewAccessLog starts an access log writing to w with room for queue
// lines waiting (DefaultLogQueue if zero or less). m may be nil. w is
// written from one goroutine only. Close stops it.
func NewAccessLog(w io.Writer, queue int, m *Metrics) *AccessLog {
	if queue <= 0 {
		queue = DefaultLogQueue
	}
	l := &AccessLog{w: w, metrics: m, limit: queue, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// Dropped returns how many lines were dropped because the queue was full
// or the log was closed.
func (l *AccessLog) Dropped() uint64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Close writes every queued line, stops the writer and closes the file
// OpenAccessLog opened. Lines recorded after Close are dropped. It returns
// the first write error, if any. Close may be called more than once.
func (l *AccessLog) Close() error {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		if l.closer != nil {
			if err := l.closer.Close(); err != nil && l.err == nil {
				l.err = err
			}
		}
	})
	return l.err
}

// enqueue encodes e for the writer, or drops it if the queue is full or
// the log closed.
func (l *AccessLog) enqueue(e *logEntry) {
	l.mu.Lock()
	if l.closed || l.pending >= l.limit {
		l.mu.Unlock()
		l.dropped.Add(1)
		if l.metrics != nil {
			l.metrics.AccessLogDropped.Inc()
		}
		return
	}
	l.buf = appendEntry(l.buf, e)
	l.pending++
	full := len(l.buf) >= flushSize
	l.mu.Unlock()
	if full {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// enqueueHTTP queues the line for request r.
func (l *AccessLog) enqueueHTTP(r *HTTPRecord) {
	e := logEntry{
		LogFields: r.LogFields, code: int32(r.ResponseCode), flags: r.Flags,
		received: r.RequestBytes, sent: r.ResponseBytes,
		duration: r.Duration, upstreamTime: r.UpstreamServiceTime,
		method: r.Method, path: r.Path, protocol: r.HTTPProtocol, details: r.ResponseCodeDetails,
		xff: r.XForwardedFor, userAgent: r.UserAgent, requestID: r.RequestID, authority: r.Authority,
	}
	l.enqueue(&e)
}

// enqueueTCP queues the line for connection r.
func (l *AccessLog) enqueueTCP(r *TCPRecord) {
	e := logEntry{LogFields: r.LogFields, flags: r.Flags,
		received: r.ReceivedBytes, sent: r.SentBytes, duration: r.Duration}
	l.enqueue(&e)
}

// run is the writer goroutine: at every tick, or when kicked, it takes
// the waiting lines and writes them.
func (l *AccessLog) run() {
	defer close(l.done)
	var spare []byte
	tick := time.NewTicker(FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-l.kick:
		case <-l.stop:
			l.mu.Lock()
			l.closed = true
			l.mu.Unlock()
			l.flush(spare)
			return
		}
		spare = l.flush(spare)
	}
}

// flush swaps the waiting lines for spare (an empty buffer), writes
// them, and returns the written buffer emptied for the next swap.
func (l *AccessLog) flush(spare []byte) []byte {
	l.mu.Lock()
	buf := l.buf
	l.buf, l.pending = spare[:0], 0
	l.mu.Unlock()
	if len(buf) == 0 {
		return buf
	}
	if _, err := l.w.Write(buf); err != nil {
		if l.err == nil {
			l.err = err
		}
		if l.metrics != nil {
			l.metrics.AccessLogWriteErrors.Inc()
		}
	}
	if cap(buf) > 4*flushSize { // a burst: do not keep its memory
		return nil
	}
	return buf[:0]
}

// logEntry is one queued access-log line.
type logEntry struct {
	LogFields
	code                    int32
	flags                   ResponseFlags
	received, sent          int64
	duration, upstreamTime  time.Duration
	method, path, protocol  string
	details, xff, userAgent string
	requestID, authority    string
}
