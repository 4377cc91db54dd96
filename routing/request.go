package routing

import (
	"net/http"
	"strings"
)

// Request is what Match reads from one HTTP request. The proxy fills it
// without copying: the strings may point into the request.
type Request struct {
	// Method is the request method (":method").
	Method string
	// Scheme is "http" or "https" (":scheme"); empty means "http".
	Scheme string
	// Authority is the Host header or ":authority", possibly with a port.
	Authority string
	// Path is the request target's path with its query string, as sent
	// (":path", e.g. "/reviews/1?x=y").
	Path string
	// Header holds the request headers with canonical keys, as net/http
	// builds them. Nil means no headers.
	Header http.Header
	// Port is the listener (original destination) port the request
	// arrived on.
	Port uint32
}

// uriPath returns the path without its query string.
func (r *Request) uriPath() string {
	if i := strings.IndexByte(r.Path, '?'); i >= 0 {
		return r.Path[:i]
	}
	return r.Path
}

// rawQuery returns the query string without the '?', or "".
func (r *Request) rawQuery() string {
	if i := strings.IndexByte(r.Path, '?'); i >= 0 {
		return r.Path[i+1:]
	}
	return ""
}

// scheme returns the request scheme, "http" when unset.
func (r *Request) scheme() string {
	if r.Scheme == "" {
		return "http"
	}
	return r.Scheme
}

// header returns the value of the canonical header key, joined with ","
// when the header has several values (as Envoy matches them), and whether
// it is present. Only the several-values case allocates.
func (r *Request) header(key string) (string, bool) {
	vs, ok := r.Header[key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	if len(vs) == 1 {
		return vs[0], true
	}
	return strings.Join(vs, ","), true
}

// queryValue returns the first value of the query parameter key in raw
// ("a=1&b"), and whether it is present; "b" and "b=" both have value "".
// It allocates only when the value is percent-encoded.
func queryValue(raw, key string) (string, bool) {
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(seg, "=")
		if k != key {
			continue
		}
		if strings.IndexByte(v, '%') >= 0 {
			v = percentDecode(v)
		}
		return v, true
	}
	return "", false
}

// percentDecode decodes %XX escapes, leaving malformed ones as they are.
func percentDecode(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// hostOnly strips the port from an authority: "a:80" → "a",
// "[::1]:80" → "::1", "::1" stays (a bare IPv6 address has no port).
func hostOnly(authority string) string {
	if strings.HasPrefix(authority, "[") {
		if i := strings.IndexByte(authority, ']'); i > 0 {
			return authority[1:i]
		}
		return authority
	}
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && strings.IndexByte(authority, ':') == i {
		return authority[:i]
	}
	return authority
}

// lowerInto writes the ASCII lower case of s into buf and returns it; it
// returns nil when s does not fit.
func lowerInto(buf []byte, s string) []byte {
	if len(s) > len(buf) {
		return nil
	}
	b := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return b
}
