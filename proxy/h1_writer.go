package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/remora-mesh/remora/internal/rawio"
)

// outBufSize is the response buffer of an active connection: a head and
// a small body leave in one write(2); a larger body goes out with the
// buffered part in one writev(2).
const outBufSize = 4 << 10

var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, outBufSize); return &b }}

// errHijacked is returned by writes after Hijack.
var errHijacked = errors.New("http: connection has been hijacked")

// h1writer is the http.ResponseWriter of remora's HTTP/1 codec. It is
// reused by its connection's requests one after another.
type h1writer struct {
	hc     *h1conn
	req    *http.Request
	header http.Header
	out    *[]byte // pending output; nil until the first write
	err    error   // sticky write error

	status      int
	wroteHeader bool
	sent100     bool
	chunked     bool
	noBody      bool
	length      int64 // declared Content-Length, -1 for none
	written     int64
	closeAfter  bool // Connection: close on this response
	hijacked    bool
}

// reset prepares w for the next request.
func (w *h1writer) reset(r *http.Request, closeAfter bool) {
	*w = h1writer{hc: w.hc, req: r, header: headerMaps.Get().(http.Header), closeAfter: closeAfter, length: -1}
}

// release lets go of the request and the header map once the response
// is finished, so an idle connection keeps neither.
func (w *h1writer) release() {
	clear(w.header)
	headerMaps.Put(w.header)
	w.header, w.req = nil, nil
}

// headerMaps recycles response header maps between requests.
var headerMaps = sync.Pool{New: func() any { return make(http.Header, 8) }}

// Header implements http.ResponseWriter.
func (w *h1writer) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter: it frames the response and
// buffers its head.
func (w *h1writer) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.interim(code)
		return
	}
	w.wroteHeader, w.status = true, code
	h := w.header
	delete(h, "Transfer-Encoding")
	if v := h["Content-Length"]; len(v) > 0 {
		if n, ok := parseLength(v[0]); ok {
			w.length = n
		} else {
			delete(h, "Content-Length")
		}
	}
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	w.chunked = !w.noBody && w.length < 0
	if hasToken(strings.Join(h["Connection"], ","), "close") || w.hc.h.h1.draining.Load() {
		w.closeAfter = true
	}
	w.head(code)
}

// head buffers the status line and the fields.
func (w *h1writer) head(code int) {
	b := w.buf()
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	b = append(b, "\r\n"...)
	b = appendFields(b, w.header, false)
	if _, ok := w.header["Date"]; !ok {
		b = append(b, "Date: "...)
		b = append(b, httpDate()...)
		b = append(b, "\r\n"...)
	}
	if w.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.closeAfter && w.header["Connection"] == nil {
		b = append(b, "Connection: close\r\n"...)
	}
	*w.out = append(b, "\r\n"...)
	if w.noBody || w.length == 0 {
		w.flush() // the response is complete
	}
}

// appendFields appends h's fields; trailers selects the TrailerPrefix
// ones (without the prefix) instead of the others. Names that are not
// tokens are dropped and CR/LF in values become spaces, as net/http does.
func appendFields(b []byte, h http.Header, trailers bool) []byte {
	for k, vs := range h {
		name := k
		if strings.HasPrefix(k, http.TrailerPrefix) != trailers {
			continue
		}
		if trailers {
			name = k[len(http.TrailerPrefix):]
		}
		if !validFieldName(name) {
			continue
		}
		for _, v := range vs {
			b = append(b, name...)
			b = append(b, ": "...)
			b = appendValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

func appendValue(b []byte, v string) []byte {
	if strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 {
		return append(b, strings.TrimSpace(v)...)
	}
	start := len(b)
	b = append(b, strings.TrimSpace(v)...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	return b
}

func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		if !isTchar(k[i]) {
			return false
		}
	}
	return true
}

// interim sends a 1xx response at once; the final one follows.
func (w *h1writer) interim(code int) {
	b := w.buf()
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\n"...)
	b = appendFields(b, w.header, false)
	*w.out = append(b, "\r\n"...)
	w.flush()
}

// continue100 answers Expect: 100-continue when the body is first read.
func (w *h1writer) continue100() {
	if w.wroteHeader || w.sent100 || w.hijacked {
		return
	}
	w.sent100 = true
	*w.out = append(w.buf(), "HTTP/1.1 100 Continue\r\n\r\n"...)
	w.flush()
}

// Write implements http.ResponseWriter.
func (w *h1writer) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, errHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	var tooLong bool
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		p, tooLong = p[:w.length-w.written], true
	}
	if len(p) == 0 {
		return 0, lengthErr(tooLong)
	}
	if w.chunked {
		b := strconv.AppendInt(w.buf(), int64(len(p)), 16)
		*w.out = append(b, "\r\n"...)
	}
	w.send(p)
	if w.chunked {
		*w.out = append(w.buf(), "\r\n"...)
	}
	w.written += int64(len(p))
	if w.written == w.length {
		w.flush() // complete: the client need not wait for the access log
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), lengthErr(tooLong)
}

func lengthErr(tooLong bool) error {
	if tooLong {
		return http.ErrContentLength
	}
	return nil
}

// send appends p to the pending output, or writes both at once when p
// does not fit.
func (w *h1writer) send(p []byte) {
	b := w.buf()
	if len(b)+len(p) <= cap(b) {
		*w.out = append(b, p...)
		return
	}
	if w.err != nil {
		return
	}
	bufs := net.Buffers{b, p}
	if _, err := bufs.WriteTo(w.hc.c); err != nil {
		w.err = err
	}
	*w.out = b[:0]
}

// buf returns the pending output, taking a buffer from the pool first.
func (w *h1writer) buf() []byte {
	if w.out == nil {
		w.out = outBufs.Get().(*[]byte)
	}
	return *w.out
}

// flush writes the pending output.
func (w *h1writer) flush() {
	if w.out == nil || len(*w.out) == 0 {
		return
	}
	if w.err == nil {
		_, w.err = w.hc.c.Write(*w.out)
	}
	*w.out = (*w.out)[:0]
}

// Flush implements http.Flusher.
func (w *h1writer) Flush() {
	if w.hijacked {
		return
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.flush()
}

// finish ends the response after the handler returned: the head if none
// was written, the last chunk and trailers, and the flush. It reports
// whether the connection can serve another request.
func (w *h1writer) finish() bool {
	if w.hijacked {
		return false
	}
	if !w.wroteHeader {
		if _, ok := w.header["Content-Length"]; !ok && w.req.Method != http.MethodHead {
			w.header.Set("Content-Length", "0")
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		b := append(w.buf(), "0\r\n"...)
		b = appendDeclaredTrailers(b, w.header)
		b = appendFields(b, w.header, true)
		*w.out = append(b, "\r\n"...)
	}
	if w.length >= 0 && !w.noBody && w.written < w.length {
		w.closeAfter = true // the body fell short of its length
	}
	w.flush()
	if w.out != nil {
		*w.out = (*w.out)[:0]
		outBufs.Put(w.out)
		w.out = nil
	}
	return w.err == nil && !w.closeAfter
}

// appendDeclaredTrailers appends the trailers the head announced in its
// Trailer field and the handler set after the body.
func appendDeclaredTrailers(b []byte, h http.Header) []byte {
	for _, decl := range h["Trailer"] {
		for decl != "" {
			var k string
			k, decl, _ = strings.Cut(decl, ",")
			k = canonicalKey(strings.TrimSpace(k))
			if k == "" || !validFieldName(k) {
				continue
			}
			if _, dup := h[http.TrailerPrefix+k]; dup {
				continue
			}
			for _, v := range h[k] {
				b = append(b, k...)
				b = append(b, ": "...)
				b = appendValue(b, v)
				b = append(b, "\r\n"...)
			}
		}
	}
	return b
}

// Hijack implements http.Hijacker: the caller owns the connection, with
// the bytes already read past the request in the returned reader.
func (w *h1writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, errHijacked
	}
	w.flush()
	w.hijacked = true
	hc := w.hc
	var pending []byte
	if hc.buf != nil && hc.r < hc.w {
		pending = bytes.Clone((*hc.buf)[hc.r:hc.w])
		hc.r = hc.w
	}
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pending), rawio.Unwrap(hc.c)), max(len(pending), 4096))
	if len(pending) > 0 {
		_, _ = br.Peek(len(pending))
	}
	c := rawio.Unwrap(hc.c) // a tunnel may splice
	return c, bufio.NewReadWriter(br, bufio.NewWriter(c)), nil
}

// dateCache holds the Date field value of the current second.
var dateCache atomic.Pointer[dateEntry]

type dateEntry struct {
	sec int64
	s   string
}

// httpDate is the Date field value for now, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if e := dateCache.Load(); e != nil && e.sec == sec {
		return e.s
	}
	e := &dateEntry{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(e)
	return e.s
}
