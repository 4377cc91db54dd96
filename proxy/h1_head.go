package proxy

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"

	"github.com/remora-mesh/remora/internal/headerkey"
)

// headInfo is what the codec needs from a parsed head beyond the
// http.Request: its body framing and what happens to the connection.
type headInfo struct {
	length  int64 // Content-Length; 0 for none
	chunked bool
	connect bool // CONNECT: the rest of the connection is a tunnel
	upgrade bool // an Upgrade request: the connection may leave HTTP/1
	close   bool // the client asked to close after this request
	expect  bool // Expect: 100-continue
}

// hasBody reports whether the request has a body to read.
func (h headInfo) hasBody() bool { return h.chunked || h.length > 0 }

// h1req holds one request and what it points to in a single allocation:
// the http.Request, its URL, the backing array of its header values, its
// body reader, and its connection and framing for the worker that runs
// it.
type h1req struct {
	req  http.Request
	url  url.URL
	vals [8]string
	body h1body
	hc   *h1conn
	info headInfo
}

// parseHead parses one request head (request line, header lines and the
// empty line) into hr, refusing what Envoy's HTTP/1 codec refuses: a
// non-zero status is Envoy's answer (400, 431 or 501) and why says what
// was wrong. Every string of the request is a substring of head, so the
// head is one allocation.
func parseHead(head string, hr *h1req) (h headInfo, status int, why string) {
	line, rest, ok := cutLine(head)
	if !ok {
		return h, http.StatusBadRequest, "bare LF"
	}
	r := &hr.req
	if !parseRequestLine(line, r) {
		return h, http.StatusBadRequest, "malformed request line"
	}
	h.connect = r.Method == http.MethodConnect
	r.Header = make(http.Header, min(strings.Count(rest, "\n"), MaxRequestHeaders))
	var n int
	var seen fieldCounts
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return h, http.StatusBadRequest, "bare LF"
		}
		if len(line) == 0 {
			break
		}
		if n++; n > MaxRequestHeaders {
			return h, http.StatusRequestHeaderFieldsTooLarge, "too many headers"
		}
		name, value, why := splitHeader(line)
		if why != "" {
			return h, http.StatusBadRequest, why
		}
		key := canonicalKey(name)
		keep, status, why := h.field(key, value, &seen, r)
		if status != 0 {
			return h, status, why
		}
		if keep {
			hr.addHeader(key, value, n)
		}
	}
	if seen.lengths > 0 && seen.encodings > 0 {
		return h, http.StatusBadRequest, "both content-length and transfer-encoding"
	}
	h.close = h.close || r.ProtoMinor == 0
	if seen.hosts == 0 && r.ProtoMinor == 1 {
		return h, http.StatusBadRequest, "missing host header"
	}
	return h, 0, ""
}

// fieldCounts counts the fields that may appear only once.
type fieldCounts struct{ hosts, lengths, encodings int }

// field takes what the codec needs from one field; keep is false for the
// fields net/http keeps out of Header (Host, Transfer-Encoding).
func (h *headInfo) field(key, value string, seen *fieldCounts, r *http.Request) (keep bool, status int, why string) {
	switch key {
	case "Host":
		if seen.hosts++; seen.hosts > 1 || !validAuthority(value) {
			return false, http.StatusBadRequest, "invalid host"
		}
		r.Host = value
		return false, 0, ""
	case "Content-Length":
		l, ok := parseLength(value)
		if seen.lengths++; seen.lengths > 1 || !ok {
			return false, http.StatusBadRequest, "invalid content-length"
		}
		h.length = l
	case "Transfer-Encoding":
		if seen.encodings++; seen.encodings > 1 || !strings.EqualFold(value, "chunked") {
			return false, http.StatusNotImplemented, "unsupported transfer encoding"
		}
		h.chunked = true
		return false, 0, ""
	case "Upgrade":
		h.upgrade = true
	case "Connection":
		h.close = h.close || hasToken(value, "close")
	case "Expect":
		h.expect = strings.EqualFold(value, "100-continue")
	}
	return true, 0, ""
}

// addHeader adds one field; the n-th field's value slice comes from the
// request's own array while it lasts.
func (hr *h1req) addHeader(key, value string, n int) {
	h := hr.req.Header
	if vs, ok := h[key]; ok {
		h[key] = append(vs, value)
		return
	}
	if n <= len(hr.vals) {
		hr.vals[n-1] = value
		h[key] = hr.vals[n-1 : n : n]
		return
	}
	h[key] = []string{value}
}

// parseRequestLine parses "method SP request-target SP HTTP/d.d" into r.
func parseRequestLine(line string, r *http.Request) bool {
	method, rest, ok := strings.Cut(line, " ")
	if !ok || method == "" {
		return false
	}
	for i := range len(method) {
		if !isTchar(method[i]) {
			return false
		}
	}
	target, v, ok := strings.Cut(rest, " ")
	if !ok || target == "" {
		return false
	}
	for i := range len(target) {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	if len(v) != 8 || v[:5] != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) || v[5] != '1' {
		return false
	}
	r.Method, r.RequestURI, r.Proto = method, target, v
	r.ProtoMajor, r.ProtoMinor = 1, int(v[7]-'0')
	return r.ProtoMinor <= 1
}

// parseTarget sets r.URL (and r.Host for an absolute-form target) as
// net/http's server does; false means a target it refuses.
func parseTarget(r *http.Request, u *url.URL) bool {
	target := r.RequestURI
	if r.Method == http.MethodConnect && !strings.HasPrefix(target, "/") {
		// authority-form: net/http parses it as "http://" + target.
		pu, err := url.ParseRequestURI("http://" + target)
		if err != nil {
			return false
		}
		pu.Scheme = ""
		r.URL = pu
	} else if plainPath(target) {
		path, query, _ := strings.Cut(target, "?")
		*u = url.URL{Path: path, RawQuery: query}
		r.URL = u
	} else {
		pu, err := url.ParseRequestURI(target)
		if err != nil {
			return false
		}
		r.URL = pu
	}
	if r.URL.Host != "" {
		r.Host = r.URL.Host
	}
	return true
}

// plainPath reports whether target is an origin-form path (and query)
// that url.ParseRequestURI would take as it is: no escapes, and only
// characters its path encoding leaves alone, so the fast path and the
// parser agree byte for byte.
func plainPath(target string) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, _, _ := strings.Cut(target, "?")
	for i := range len(path) {
		if !pathChars[path[i]] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token,
// ignoring case.
func hasToken(v, token string) bool {
	for v != "" {
		var part string
		part, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// cutLine splits off one CRLF-terminated line; ok is false for a bare LF
// or a CR anywhere else in the line.
func cutLine(b string) (line, rest string, ok bool) {
	i := strings.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return "", "", false
	}
	line = b[:i-1]
	if strings.IndexByte(line, '\r') >= 0 {
		return "", "", false
	}
	return line, b[i+1:], true
}

// splitHeader splits "name: value"; why is non-empty for obsolete line
// folding, an invalid name, whitespace before the colon or a control
// character in the value.
func splitHeader(line string) (name, value, why string) {
	if line[0] == ' ' || line[0] == '\t' {
		return "", "", "obsolete line folding"
	}
	i := strings.IndexByte(line, ':')
	if i <= 0 {
		return "", "", "invalid header name"
	}
	name = line[:i]
	for j := range len(name) {
		if !isTchar(name[j]) {
			return "", "", "invalid header name"
		}
	}
	value = strings.Trim(line[i+1:], " \t")
	for j := range len(value) {
		if c := value[j]; c < ' ' && c != '\t' || c == 0x7f {
			return "", "", "invalid header value"
		}
	}
	return name, value, ""
}

// canonicalKey is the canonical form of a field name already checked to
// be a token.
func canonicalKey(name string) string { return headerkey.CanonicalToken(name) }

// parseLength parses a Content-Length: 1 to 18 digits, nothing else.
func parseLength(v string) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := range len(v) {
		if !isDigit(v[i]) {
			return 0, false
		}
		n = 10*n + int64(v[i]-'0')
	}
	return n, true
}

// validAuthority is Envoy's authority check (nghttp2's
// check_authority): unreserved, sub-delims, ':', '@', '%', '[' and ']'.
func validAuthority(v string) bool {
	for i := range len(v) {
		if !authorityChars[v[i]] {
			return false
		}
	}
	return true
}

// tchars, authorityChars and pathChars are lookup tables for isTchar,
// validAuthority and plainPath.
var tchars, authorityChars, pathChars = func() (t, a, p [256]bool) {
	for c := range 256 {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		t[c] = alnum || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
		a[c] = alnum || strings.IndexByte("-._~!$&'()*+,;=:@%[]", b) >= 0
		p[c] = alnum || strings.IndexByte("-._~!$&'()*+,;=:@/", b) >= 0
	}
	return t, a, p
}()

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool { return tchars[c] }

func hexVal(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// headEnd returns the length of the head in b through its empty line
// (CRLF CRLF, or a bare LF pair, which parseHead then refuses), or -1;
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
