package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

// The request writer is net/http's Request.Write for the requests remora
// sends, minus its per-request costs: header fields go out in map order
// (net/http sorts them, allocating), the request target is written in
// pieces, and a small in-memory body joins the head in one write(2).
// What goes on the wire is otherwise the same: the request line with the
// URL's path and query, Host (punycoded; dropped when invalid), a
// User-Agent only when the header has a non-empty one, Connection: close
// for req.Close, Content-Length (also 0 for POST, PUT and PATCH) or
// chunked framing when the length is unknown, the Trailer announcement
// and, after a chunked body, the trailer fields. One difference is
// stricter: a header field name that is not a token is an error instead
// of being written as is.

// fieldSanitizer makes header values single-line, as net/http does.
var fieldSanitizer = strings.NewReplacer("\n", " ", "\r", " ")

// copyBufs are the copy buffers of chunked request bodies.
var copyBufs = sync.Pool{New: func() any { return new([16 << 10]byte) }}

// framing is how a request body is delimited on the wire.
type framing struct {
	length  int64 // -1: unknown, sent chunked
	chunked bool
}

// requestFraming returns req's body framing, as net/http's outgoingLength:
// a body with ContentLength 0 has an unknown length.
func requestFraming(req *http.Request) (framing, error) {
	if req.Body == nil || req.Body == http.NoBody {
		if req.ContentLength != 0 {
			return framing{}, fmt.Errorf("http: Request.ContentLength=%d with nil Body", req.ContentLength)
		}
		return framing{}, nil
	}
	if req.ContentLength > 0 {
		return framing{length: req.ContentLength}, nil
	}
	return framing{length: -1, chunked: true}, nil
}

// writeHead writes req's head into bw (unflushed).
func writeHead(bw *bufio.Writer, req *http.Request, f framing) error {
	host, err := requestHost(req)
	if err != nil {
		return err
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	if err := writeTarget(bw, req, host); err != nil {
		return err
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if ua := req.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		writeField(bw, "User-Agent", ua[0])
	}
	if req.Close && !httpguts.HeaderValuesContainsToken(req.Header["Connection"], "close") {
		bw.WriteString("Connection: close\r\n")
	}
	switch {
	case f.chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case f.length > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), f.length, 10))
		bw.WriteString("\r\n")
	}
	if err := writeTrailerNames(bw, req.Trailer); err != nil {
		return err
	}
	if err := writeFields(bw, req.Header); err != nil {
		return err
	}
	_, err = bw.WriteString("\r\n")
	return err
}

// requestHost is the Host field of req as net/http writes it: req.Host or
// the URL's host, punycoded, empty when invalid (never altered), without
// an IPv6 zone (RFC 6874).
func requestHost(req *http.Request) (string, error) {
	host := req.Host
	if host == "" && req.URL != nil {
		host = req.URL.Host
	}
	host, err := httpguts.PunycodeHostPort(host)
	if err != nil {
		return "", err
	}
	if !httpguts.ValidHostHeader(host) {
		return "", nil
	}
	if !strings.HasPrefix(host, "[") {
		return host, nil
	}
	i := strings.LastIndexByte(host, ']')
	if i < 0 {
		return host, nil
	}
	j := strings.LastIndexByte(host[:i], '%')
	if j < 0 {
		return host, nil
	}
	return host[:j] + host[i:], nil
}

// writeTarget writes the request target as net/http does: the URL's
// escaped path and query, an opaque URL's request URI, or the authority
// of a CONNECT.
func writeTarget(bw *bufio.Writer, req *http.Request, host string) error {
	u := req.URL
	if u == nil {
		return errors.New("http: nil Request.URL")
	}
	var path string
	query := false
	switch {
	case req.Method == http.MethodConnect && u.Path == "":
		path = host
		if u.Opaque != "" {
			path = u.Opaque
		}
	case u.Opaque != "":
		path = u.RequestURI()
	default:
		if path = u.EscapedPath(); path == "" {
			path = "/"
		}
		query = u.ForceQuery || u.RawQuery != ""
	}
	if hasCTL(path) || query && hasCTL(u.RawQuery) {
		return errors.New("net/http: can't write control character in Request.URL")
	}
	bw.WriteString(path)
	if query {
		bw.WriteByte('?')
		bw.WriteString(u.RawQuery)
	}
	return nil
}

// hasCTL reports whether s holds an ASCII control character.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// writeFields writes h's fields but those the writer frames itself.
func writeFields(bw *bufio.Writer, h http.Header) error {
	for k, vv := range h {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("invalid header field name %q", k)
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	return nil
}

// writeField writes one field line, its value made single-line and
// trimmed as net/http does.
func writeField(bw *bufio.Writer, k, v string) {
	if strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0 {
		v = fieldSanitizer.Replace(v)
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(textproto.TrimString(v))
	bw.WriteString("\r\n")
}

// writeTrailerNames announces the trailer fields, as net/http does.
func writeTrailerNames(bw *bufio.Writer, t http.Header) error {
	if len(t) == 0 {
		return nil
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		k = http.CanonicalHeaderKey(k)
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			return fmt.Errorf("http: invalid Trailer key %q", k)
		}
		keys = append(keys, k)
	}
	bw.WriteString("Trailer: ")
	bw.WriteString(strings.Join(keys, ","))
	bw.WriteString("\r\n")
	return nil
}

// writeBody writes req's body and, when chunked, its trailer into bw
// and flushes. A known-length body must be exactly that long.
func writeBody(bw *bufio.Writer, req *http.Request, f framing) error {
	if f.chunked {
		if err := writeChunks(bw, req.Body); err != nil {
			return err
		}
		bw.WriteString("0\r\n")
		if err := writeFields(bw, req.Trailer); err != nil {
			return err
		}
		bw.WriteString("\r\n")
		return bw.Flush()
	}
	n, err := io.Copy(bw, io.LimitReader(req.Body, f.length))
	if err != nil {
		return err
	}
	if n == f.length {
		var extra int64
		extra, err = io.Copy(io.Discard, req.Body)
		n += extra
	}
	if err == nil && n != f.length {
		err = fmt.Errorf("http: ContentLength=%d with Body length %d", f.length, n)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// writeChunks copies body as chunks, each flushed so that a stream
// flows as it is produced.
func writeChunks(bw *bufio.Writer, body io.Reader) error {
	buf := copyBufs.Get().(*[16 << 10]byte)
	defer copyBufs.Put(buf)
	for {
		n, err := body.Read(buf[:])
		if n > 0 {
			bw.Write(strconv.AppendUint(bw.AvailableBuffer(), uint64(n), 16))
			bw.WriteString("\r\n")
			bw.Write(buf[:n])
			bw.WriteString("\r\n")
			if ferr := bw.Flush(); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// nopCloserTypes are the types io.NopCloser returns.
var nopCloserTypes = [2]reflect.Type{
	reflect.TypeOf(io.NopCloser(nil)),
	reflect.TypeOf(io.NopCloser(strings.NewReader(""))),
}

// inMemory reports whether body is a reader known never to block (bytes
// and strings readers and buffers, also under io.NopCloser), as net/http
// decides whether the head may wait for the body in one write.
func inMemory(body io.Reader) bool {
	switch body.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		return true
	}
	if t := reflect.TypeOf(body); t == nopCloserTypes[0] || t == nopCloserTypes[1] {
		r, ok := reflect.ValueOf(body).Field(0).Interface().(io.Reader)
		return ok && inMemory(r)
	}
	return false
}
