package proxy

import (
	"errors"
	"strings"
)

// Errors ParseSNI returns.
var (
	// ErrShortHello means the bytes end inside the ClientHello: read more.
	ErrShortHello = errors.New("tls: ClientHello incomplete")
	// ErrNotTLS means the bytes are not a TLS handshake record holding a
	// ClientHello.
	ErrNotTLS = errors.New("not a TLS ClientHello")
)

const (
	recordTypeHandshake   = 0x16
	handshakeClientHello  = 0x01
	extServerName         = 0x0000
	serverNameTypeHost    = 0x00
	maxRecordLen          = 1<<14 + 2048
	maxClientHello        = maxSniff - 5
	maxHostNameLen        = 255
	tlsRecordHeaderLength = 5
)

// ParseSNI returns the server name of the TLS ClientHello at the start of
// b, lower-cased, or "" when it carries none (or a malformed one). The
// ClientHello may span several handshake records. It reads nothing past
// len(b): ErrShortHello means b ends inside the ClientHello; ErrNotTLS
// means b is not one. A complete ClientHello with a malformed body is
// still TLS: the name is "" and err is nil.
func ParseSNI(b []byte) (string, error) {
	msg, err := clientHello(b)
	if err != nil {
		return "", err
	}
	return helloServerName(msg), nil
}

// clientHello reassembles the ClientHello body from handshake records.
func clientHello(b []byte) ([]byte, error) {
	var hs []byte
	owned := false // whether hs is a copy that append may grow
	for first := true; ; first = false {
		if len(b) < tlsRecordHeaderLength {
			if first && !plausibleHeader(b) {
				return nil, ErrNotTLS
			}
			return nil, ErrShortHello
		}
		n := int(b[3])<<8 | int(b[4])
		if !plausibleHeader(b) || n == 0 || n > maxRecordLen {
			return nil, ErrNotTLS
		}
		if len(b) < tlsRecordHeaderLength+n {
			// Judge the handshake header early when it is already here.
			if first && len(b) >= tlsRecordHeaderLength+1 && b[5] != handshakeClientHello {
				return nil, ErrNotTLS
			}
			return nil, ErrShortHello
		}
		rec := b[tlsRecordHeaderLength : tlsRecordHeaderLength+n]
		b = b[tlsRecordHeaderLength+n:]
		switch {
		case first && len(rec) >= 4:
			hs = rec // common case: the whole header in one record, no copy
		case first:
			hs = append([]byte(nil), rec...) // copy: never append into b
		default:
			if !owned {
				hs = append([]byte(nil), hs...)
			}
			hs = append(hs, rec...)
		}
		owned = !first || len(rec) < 4
		if hs[0] != handshakeClientHello { // judged as soon as it is here, as above
			return nil, ErrNotTLS
		}
		if len(hs) < 4 {
			continue
		}
		m := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if m > maxClientHello {
			return nil, ErrNotTLS
		}
		if len(hs) >= 4+m {
			return hs[4 : 4+m], nil
		}
	}
}

// plausibleHeader checks the bytes of a record header that are present:
// type handshake, major version 3, minor version 0-4.
func plausibleHeader(b []byte) bool {
	switch {
	case len(b) > 0 && b[0] != recordTypeHandshake:
		return false
	case len(b) > 1 && b[1] != 3:
		return false
	case len(b) > 2 && b[2] > 4:
		return false
	}
	return true
}

// reader walks a byte slice without reading past its end.
type reader struct {
	b  []byte
	ok bool
}

func (r *reader) skip(n int) {
	if !r.ok || n > len(r.b) {
		r.ok = false
		return
	}
	r.b = r.b[n:]
}

func (r *reader) u8() int {
	if !r.ok || len(r.b) < 1 {
		r.ok = false
		return 0
	}
	v := int(r.b[0])
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() int { return r.u8()<<8 | r.u8() }

// vec reads a length-prefixed vector whose length has size bytes.
func (r *reader) vec(size int) reader {
	n := r.u8()
	if size == 2 {
		n = n<<8 | r.u8()
	}
	if !r.ok || n > len(r.b) {
		r.ok = false
		return reader{}
	}
	v := reader{b: r.b[:n], ok: true}
	r.b = r.b[n:]
	return v
}

// helloServerName finds the host_name of the server_name extension in a
// ClientHello body (RFC 8446 §4.1.2, RFC 6066 §3).
func helloServerName(msg []byte) string {
	r := reader{b: msg, ok: true}
	r.skip(2 + 32) // legacy_version, random
	r.vec(1)       // legacy_session_id
	r.vec(2)       // cipher_suites
	r.vec(1)       // legacy_compression_methods
	if !r.ok || len(r.b) == 0 {
		return "" // no extensions
	}
	exts := r.vec(2)
	for exts.ok && len(exts.b) > 0 {
		typ := exts.u16()
		data := exts.vec(2)
		if !exts.ok || typ != extServerName {
			continue
		}
		list := data.vec(2)
		for list.ok && len(list.b) > 0 {
			nameType := list.u8()
			name := list.vec(2)
			if list.ok && nameType == serverNameTypeHost {
				return hostName(name.b)
			}
		}
		return ""
	}
	return ""
}

// hostName validates and lower-cases an SNI host_name: printable ASCII
// without spaces, at most 255 bytes, no trailing dot.
func hostName(b []byte) string {
	if len(b) == 0 || len(b) > maxHostNameLen {
		return ""
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return ""
		}
	}
	return strings.ToLower(strings.TrimSuffix(string(b), "."))
}
