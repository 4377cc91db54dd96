package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/remora-mesh/remora/internal/headerkey"
)

// The response reader is net/http's ReadResponse for one upstream, made
// cheap and strict. The head is copied into one string that the status,
// header names and values are cut from (common names not sent in
// canonical form are interned), and the body framing follows RFC 9112 as
// net/http does: HEAD answers and 1xx, 204 and 304 have no body, then
// chunked, Content-Length, or until the connection closes. Where Envoy's
// codec refuses a response, so does this reader (a protocol error, 503
// UPE): both Transfer-Encoding and Content-Length, a status line that is
// not "HTTP/1.x NNN reason" with NNN ≥ 100, obs-fold continuation lines,
// space before a field's colon, control bytes, heads over 60 KiB or 100
// fields. Unlike net/http, it does not add Cache-Control for a Pragma.

// Limits of a response head: Envoy's defaults.
const (
	maxHeadBytes    = 60 << 10 // max_response_headers_kb
	maxHeaderFields = 100      // max_headers_count
)

var (
	errHeadTooLarge = errors.New("response head over 60 KiB")
	errTooManyField = errors.New("response head over 100 fields")
	errBothLengths  = errors.New("response has both Transfer-Encoding and Content-Length")
)

// A nothingReadError is a connection that failed or closed before the
// first byte of a response: on a reused connection, the server closed it
// while it sat idle.
type nothingReadError struct{ err error }

func (e *nothingReadError) Error() string { return e.err.Error() }
func (e *nothingReadError) Unwrap() error { return e.err }

// readHead returns the next head from br, through its empty line.
func readHead(br *bufio.Reader) (string, error) {
	if _, err := br.Peek(1); err != nil {
		return "", &nothingReadError{err}
	}
	buf, _ := br.Peek(br.Buffered())
	if end := headEnd(buf); end > 0 {
		s := string(buf[:end])
		br.Discard(end)
		return s, nil
	}
	var acc []byte
	for start := 0; ; start = len(acc) {
		line, err := br.ReadSlice('\n')
		acc = append(acc, line...)
		for err == bufio.ErrBufferFull && len(acc) <= maxHeadBytes {
			line, err = br.ReadSlice('\n')
			acc = append(acc, line...)
		}
		switch {
		case len(acc) > maxHeadBytes:
			return "", errHeadTooLarge
		case err == io.EOF:
			return "", io.ErrUnexpectedEOF
		case err != nil:
			return "", err
		case len(acc)-start <= 2 && isEmptyLine(acc[start:]):
			return string(acc), nil
		}
	}
}

// headEnd returns the length of the complete head at the start of buf,
// or 0 when buf holds none.
func headEnd(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return 0
		}
		j += i
		if isEmptyLine(buf[i : j+1]) {
			return j + 1
		}
		i = j + 1
	}
}

func isEmptyLine(l []byte) bool {
	return len(l) == 1 && l[0] == '\n' || len(l) == 2 && l[0] == '\r' && l[1] == '\n'
}

// cutLine splits s after its first line; line has no CRLF or LF.
func cutLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseResponse parses a response head read from br, whose body follows
// in br, sent in answer to req.
func parseResponse(head string, req *http.Request, br *bufio.Reader) (*http.Response, error) {
	line, rest := cutLine(head)
	resp := &http.Response{Request: req, ProtoMajor: 1}
	if err := parseStatus(resp, line); err != nil {
		return nil, err
	}
	h, err := parseFields(rest)
	if err != nil {
		return nil, err
	}
	resp.Header = h
	if err := frame(resp, br); err != nil {
		return nil, err
	}
	return resp, nil
}

// parseStatus parses "HTTP/1.x NNN reason".
func parseStatus(resp *http.Response, line string) error {
	if len(line) < 12 || line[8] != ' ' || len(line) > 12 && line[12] != ' ' ||
		line[9] < '1' || line[9] > '9' || !isDigit(line[10]) || !isDigit(line[11]) || !validValue(line[12:]) {
		return fmt.Errorf("malformed status line %q", clip(line))
	}
	switch line[:8] {
	case "HTTP/1.1":
		resp.Proto, resp.ProtoMinor = "HTTP/1.1", 1
	case "HTTP/1.0":
		resp.Proto = "HTTP/1.0"
	default:
		return fmt.Errorf("malformed status line %q", clip(line))
	}
	resp.StatusCode = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	resp.Status = line[9:]
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// parseFields parses header (or trailer) fields up to an empty line into
// a Header with canonical names.
func parseFields(s string) (http.Header, error) {
	n := strings.Count(s, "\n")
	if n > maxHeaderFields+1 {
		return nil, errTooManyField
	}
	h := make(http.Header, n)
	vals := make([]string, n)
	for {
		line, rest := cutLine(s)
		if line == "" {
			return h, nil
		}
		s = rest
		k, v, err := parseField(line)
		if err != nil {
			return nil, err
		}
		if vv := h[k]; vv != nil || len(vals) == 0 {
			h[k] = append(vv, v)
			continue
		}
		vals[0] = v
		h[k], vals = vals[:1:1], vals[1:]
	}
}

// parseField splits "Name: value" into the canonical name and the value
// without surrounding whitespace.
func parseField(line string) (k, v string, err error) {
	i := strings.IndexByte(line, ':')
	if i <= 0 {
		return "", "", fmt.Errorf("malformed header line %q", clip(line))
	}
	k, ok := headerkey.Canonical(line[:i])
	v = strings.Trim(line[i+1:], " \t")
	if !ok || !validValue(v) {
		return "", "", fmt.Errorf("malformed header line %q", clip(line))
	}
	return k, v, nil
}

// validValue reports whether s holds no control byte but HT.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
