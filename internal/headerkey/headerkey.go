// Package headerkey canonicalises HTTP/1 field names as
// textproto.CanonicalMIMEHeaderKey does, without allocating for a name
// that is canonical already or a common one, for the proxy's two HTTP/1
// parsers (downstream requests, upstream responses).
package headerkey

import "net/textproto"

// Canonical returns k in canonical form ("content-type" →
// "Content-Type"); ok is false when k is not a token (RFC 9110 §5.6.2).
// A canonical k is returned as it is, so a name sliced from a larger
// string costs nothing; a common name comes from an interned table.
func Canonical(k string) (string, bool) {
	if k == "" {
		return "", false
	}
	for i := range len(k) {
		if !tchar[k[i]] {
			return "", false
		}
	}
	return CanonicalToken(k), true
}

// CanonicalToken is Canonical for a name the caller has checked is a
// token.
func CanonicalToken(k string) string {
	upper := true
	for i := range len(k) {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return canonicalize(k)
		}
		upper = c == '-'
	}
	return k
}

// canonicalize rewrites a name that is not canonical.
func canonicalize(k string) string {
	var buf [64]byte
	if len(k) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(k)
	}
	b := buf[:len(k)]
	upper := true
	for i := range len(k) {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
		upper = c == '-'
	}
	if v, ok := common[string(b)]; ok {
		return v
	}
	return string(b)
}

// common interns the names of fields clients and servers commonly send
// in lower case (HTTP/2-minded peers, curl -H).
var common = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Accept-Language", "Accept-Ranges", "Access-Control-Allow-Origin",
		"Age", "Authorization", "Baggage", "Cache-Control", "Connection", "Content-Encoding",
		"Content-Language", "Content-Length", "Content-Type", "Cookie", "Date", "End-User", "Etag",
		"Expect", "Expires", "Grpc-Accept-Encoding", "Grpc-Encoding", "Grpc-Message", "Grpc-Status",
		"Grpc-Timeout", "Host", "Keep-Alive", "Last-Modified", "Location", "Origin", "Pragma", "Referer",
		"Sec-Websocket-Key", "Sec-Websocket-Version", "Server", "Set-Cookie", "Strict-Transport-Security",
		"Te", "Traceparent", "Tracestate", "Trailer", "Transfer-Encoding", "Upgrade", "User-Agent", "Vary",
		"Via", "X-B3-Flags", "X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Spanid", "X-B3-Traceid",
		"X-Content-Type-Options", "X-Envoy-Upstream-Service-Time", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Frame-Options", "X-Powered-By", "X-Request-Id",
	} {
		m[k] = k
	}
	return m
}()

// tchar marks the bytes a token may hold.
var tchar = func() (t [256]bool) {
	for c := range 256 {
		b := byte(c)
		t[c] = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			b == '!' || b == '#' || b == '$' || b == '%' || b == '&' || b == '\'' || b == '*' ||
			b == '+' || b == '-' || b == '.' || b == '^' || b == '_' || b == '`' || b == '|' || b == '~'
	}
	return t
}()
