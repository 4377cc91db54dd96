package telemetry

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLogQueue is the access log's queue length in lines when
// NewAccessLog is given zero.
const DefaultLogQueue = 8192

// flushSize is how many encoded bytes the writer gathers before it writes
// even though more lines are queued.
const flushSize = 64 << 10

// AccessLog writes one JSON line per request or TCP connection with Istio's
// JSON field names (see appendEntry). Recording never blocks: a line is
// copied into a bounded queue, or dropped and counted when the queue is
// full. One goroutine encodes queued lines and writes them in batches as
// soon as the queue runs empty, so a line reaches the destination well
// within a second. A nil *AccessLog logs nothing. Safe for concurrent use.
type AccessLog struct {
	w       io.Writer
	closer  io.Closer // the file OpenAccessLog opened, or nil
	metrics *Metrics  // may be nil
	queue   chan logEntry
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
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

// NewAccessLog starts an access log writing to w with room for queue lines
// (DefaultLogQueue if zero or less). m may be nil. w is written from one
// goroutine only. Close stops it.
func NewAccessLog(w io.Writer, queue int, m *Metrics) *AccessLog {
	if queue <= 0 {
		queue = DefaultLogQueue
	}
	l := &AccessLog{w: w, metrics: m, queue: make(chan logEntry, queue),
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
		l.closed.Store(true)
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

// enqueue adds e to the queue, or drops it if the queue is full.
func (l *AccessLog) enqueue(e *logEntry) {
	if !l.closed.Load() {
		select {
		case l.queue <- *e:
			return
		default:
		}
	}
	l.dropped.Add(1)
	if l.metrics != nil {
		l.metrics.AccessLogDropped.Inc()
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

// run is the writer goroutine: it encodes queued lines and writes each
// batch once the queue is empty or the batch reaches flushSize.
func (l *AccessLog) run() {
	defer close(l.done)
	buf := make([]byte, 0, flushSize+4096)
	for {
		select {
		case e := <-l.queue:
			buf = appendEntry(buf, &e)
			buf = l.drain(buf)
		case <-l.stop:
			l.drain(buf)
			return
		}
	}
}

// drain encodes queued lines into buf, writing whenever it reaches
// flushSize, until the queue is empty; then it writes what is left.
func (l *AccessLog) drain(buf []byte) []byte {
	for {
		if len(buf) >= flushSize {
			buf = l.write(buf)
		}
		select {
		case e := <-l.queue:
			buf = appendEntry(buf, &e)
			continue
		default:
		}
		return l.write(buf)
	}
}

// write writes buf and returns it emptied.
func (l *AccessLog) write(buf []byte) []byte {
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
