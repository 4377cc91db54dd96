package proxy

import (
	"bytes"
	"net/http"
)

// headInfo is what the guard needs from a checked head: its body framing
// and whether the connection leaves HTTP/1 after it.
type headInfo struct {
	length  int64 // Content-Length; 0 for none
	chunked bool
	connect bool
	upgrade bool
}

// checkHead validates one request head (request line, header lines and
// the empty line) as Envoy's HTTP/1 codec does; a non-zero status is the
// answer Envoy gives (400, 431 or 501) and why says what was wrong.
func checkHead(head []byte) (h headInfo, status int, why string) {
	line, rest, ok := cutLine(head)
	if !ok {
		return h, http.StatusBadRequest, "bare LF"
	}
	method, ok := checkRequestLine(line)
	if !ok {
		return h, http.StatusBadRequest, "malformed request line"
	}
	h.connect = string(method) == http.MethodConnect
	var n, hosts, lengths, encodings int
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
		switch {
		case asciiEqualFold(name, "host"):
			if hosts++; hosts > 1 || !validAuthority(value) {
				return h, http.StatusBadRequest, "invalid host"
			}
		case asciiEqualFold(name, "content-length"):
			l, ok := parseLength(value)
			if lengths++; lengths > 1 || !ok {
				return h, http.StatusBadRequest, "invalid content-length"
			}
			h.length = l
		case asciiEqualFold(name, "transfer-encoding"):
			if encodings++; encodings > 1 || !asciiEqualFold(value, "chunked") {
				return h, http.StatusNotImplemented, "unsupported transfer encoding"
			}
			h.chunked = true
		case asciiEqualFold(name, "upgrade"):
			h.upgrade = true
		}
	}
	if lengths > 0 && encodings > 0 {
		return h, http.StatusBadRequest, "both content-length and transfer-encoding"
	}
	return h, 0, ""
}

// cutLine splits off one CRLF-terminated line; ok is false for a bare LF
// or a CR anywhere else in the line.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// checkRequestLine checks "method SP request-target SP HTTP/d.d".
func checkRequestLine(line []byte) (method []byte, ok bool) {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return nil, false
	}
	method = line[:sp1]
	for _, c := range method {
		if !isTchar(c) {
			return nil, false
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return nil, false
	}
	for _, c := range rest[:sp2] {
		if c <= ' ' || c == 0x7f {
			return nil, false
		}
	}
	v := rest[sp2+1:]
	if len(v) != 8 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		return nil, false
	}
	return method, true
}

// splitHeader splits "name: value"; why is non-empty for obsolete line
// folding, an invalid name, whitespace before the colon or a control
// character in the value.
func splitHeader(line []byte) (name, value []byte, why string) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, "obsolete line folding"
	}
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, "invalid header name"
	}
	name = line[:i]
	for _, c := range name {
		if !isTchar(c) {
			return nil, nil, "invalid header name"
		}
	}
	value = bytes.Trim(line[i+1:], " \t")
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, "invalid header value"
		}
	}
	return name, value, ""
}

// parseLength parses a Content-Length: 1 to 18 digits, nothing else.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = 10*n + int64(c-'0')
	}
	return n, true
}

// validAuthority is Envoy's authority check (nghttp2's
// check_authority): unreserved, sub-delims, ':', '@', '%', '[' and ']';
// empty is allowed (net/http answers a missing host itself).
func validAuthority(v []byte) bool {
	for _, c := range v {
		if !authorityChars[c] {
			return false
		}
	}
	return true
}

// tchars and authorityChars are lookup tables for isTchar and
// validAuthority.
var tchars, authorityChars = func() (t, a [256]bool) {
	for c := range 256 {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		t[c] = alnum || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), b) >= 0
		a[c] = alnum || bytes.IndexByte([]byte("-._~!$&'()*+,;=:@%[]"), b) >= 0
	}
	return t, a
}()

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool { return tchars[c] }

// asciiEqualFold compares b with the lower-case ASCII string s, ignoring
// case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// stepChunkSize passes one chunk-size line on, or the last chunk's.
func (g *h1Guard) stepChunkSize(in []byte) bool {
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		if len(in) > maxChunkLine {
			return g.badBody()
		}
		return false
	}
	if i < 2 || in[i-1] != '\r' || i > maxChunkLine {
		return g.badBody()
	}
	line := in[:i-1]
	if j := bytes.IndexByte(line, ';'); j >= 0 {
		line = line[:j]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return g.badBody()
	}
	var size int64
	for _, c := range line {
		d, ok := hexVal(c)
		if !ok {
			return g.badBody()
		}
		size = size<<4 | int64(d)
	}
	g.out, g.r = in[:i+1], g.r+i+1
	if size == 0 {
		g.mode = modeTrailer
	} else {
		g.mode, g.remain = modeChunkData, size
	}
	return true
}

// stepTrailer passes trailer lines on up to the empty line.
func (g *h1Guard) stepTrailer(in []byte) bool {
	i := bytes.IndexByte(in, '\n')
	if i < 0 {
		if len(in) > maxChunkLine {
			return g.badBody()
		}
		return false
	}
	if i < 1 || in[i-1] != '\r' || i > maxChunkLine {
		return g.badBody()
	}
	g.out, g.r = in[:i+1], g.r+i+1
	if i == 1 {
		g.endMessage()
	}
	return true
}

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
