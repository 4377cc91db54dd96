package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// frame sets the response's body, length, Close and Trailer from its
// head, as net/http's readTransfer does, but refusing both
// Transfer-Encoding and Content-Length.
func frame(resp *http.Response, br *bufio.Reader) error {
	h := resp.Header
	resp.Close = shouldClose(resp)
	te, chunked := h["Transfer-Encoding"]
	if chunked {
		if _, ok := h["Content-Length"]; ok {
			return errBothLengths
		}
		delete(h, "Transfer-Encoding")
		chunked = resp.ProtoMinor == 1 // HTTP/1.0: ignored, as net/http
		if chunked && (len(te) != 1 || !strings.EqualFold(te[0], "chunked")) {
			return fmt.Errorf("unsupported transfer encoding %q", te)
		}
	}
	n, err := contentLength(h)
	if err != nil {
		return err
	}
	if chunked {
		if resp.Trailer, err = declaredTrailer(h); err != nil {
			return err
		}
	}
	code := resp.StatusCode
	head := resp.Request != nil && resp.Request.Method == http.MethodHead
	switch {
	case head:
		resp.Body, resp.ContentLength = http.NoBody, n
	case code/100 == 1 || code == http.StatusNoContent || code == http.StatusNotModified:
		resp.Body = http.NoBody
	case chunked:
		resp.ContentLength = -1
		resp.Body = &chunkedBody{cr: httputil.NewChunkedReader(br), br: br, resp: resp}
	case n == 0:
		resp.Body = http.NoBody
	case n > 0:
		resp.ContentLength = n
		resp.Body = &fixedBody{br: br, n: n}
	default:
		resp.Close, resp.ContentLength = true, -1
		resp.Body = &eofBody{br: br}
	}
	if chunked {
		resp.TransferEncoding = []string{"chunked"}
	}
	return nil
}

// shouldClose reports whether the connection ends with the response, and
// drops an HTTP/1.1 "Connection: close" as net/http does.
func shouldClose(resp *http.Response) bool {
	conn := resp.Header["Connection"]
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	if resp.ProtoMinor == 0 {
		return hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	}
	if hasClose {
		delete(resp.Header, "Connection")
	}
	return hasClose
}

// contentLength parses the Content-Length field (-1 without one);
// repeated identical values collapse to one, differing ones are refused.
func contentLength(h http.Header) (int64, error) {
	cl := h["Content-Length"]
	if len(cl) == 0 {
		return -1, nil
	}
	for _, v := range cl[1:] {
		if v != cl[0] {
			return 0, fmt.Errorf("differing Content-Length values %q", cl)
		}
	}
	if len(cl) > 1 {
		h["Content-Length"] = cl[:1]
	}
	n, err := strconv.ParseUint(cl[0], 10, 63)
	if err != nil {
		return 0, fmt.Errorf("bad Content-Length %q", clip(cl[0]))
	}
	return int64(n), nil
}

// declaredTrailer moves the Trailer field's names into a Trailer map.
func declaredTrailer(h http.Header) (http.Header, error) {
	vv, ok := h["Trailer"]
	if !ok {
		return nil, nil
	}
	delete(h, "Trailer")
	var t http.Header
	for _, v := range vv {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.Trim(k, " \t"); k == "" {
				continue
			}
			k = http.CanonicalHeaderKey(k)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, fmt.Errorf("bad trailer key %q", k)
			}
			if t == nil {
				t = http.Header{}
			}
			t[k] = nil
		}
	}
	return t, nil
}

// connOwned gives a body reader the Close of io.ReadCloser: closing does
// nothing, as the exchange's body wrapper decides the connection's fate.
type connOwned struct{}

func (connOwned) Close() error { return nil }

// fixedBody is a body of known length; a connection that ends sooner
// is io.ErrUnexpectedEOF. Its end is sticky, so that a read after it
// never touches the connection's next response.
type fixedBody struct {
	connOwned
	br  *bufio.Reader
	n   int64
	err error
}

func (b *fixedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	switch {
	case b.n == 0:
		err = io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return n, err
}

// eofBody is a body that ends when the connection does.
type eofBody struct {
	connOwned
	br  *bufio.Reader
	err error
}

func (b *eofBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.br.Read(p)
	b.err = err
	return n, err
}

// chunkedBody is a chunked body; its trailer fields are added to
// resp.Trailer when the last chunk has been read.
type chunkedBody struct {
	connOwned
	cr   io.Reader
	br   *bufio.Reader
	resp *http.Response
	err  error
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.cr.Read(p)
	if err == io.EOF {
		err = b.readTrailer()
	}
	b.err = err
	return n, err
}

// readTrailer reads the trailer section; io.EOF means it was read.
func (b *chunkedBody) readTrailer() error {
	s, err := readHead(b.br)
	if err != nil {
		var nr *nothingReadError
		if errors.As(err, &nr) && nr.err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if s != "\r\n" && !strings.HasSuffix(s, "\r\n\r\n") { // as net/http: CRLF ends it
		return errors.New("malformed chunked trailer")
	}
	t, err := parseFields(s)
	if err != nil {
		return err
	}
	if len(t) > 0 && b.resp.Trailer == nil {
		b.resp.Trailer = t
		return io.EOF
	}
	for k, vv := range t {
		b.resp.Trailer[k] = vv
	}
	return io.EOF
}
