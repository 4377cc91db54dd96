package proxy

import (
	"errors"
	"testing"
)

func TestParseSNI(t *testing.T) {
	hello := clientHelloBytes(t, "api.Example.com")
	noSNI := clientHelloBytes(t, "")
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr error
	}{
		{"full", hello, "api.example.com", nil},
		{"trailing bytes", append(append([]byte{}, hello...), 0x17, 0x03, 0x03), "api.example.com", nil},
		{"no sni", noSNI, "", nil},
		{"split records", splitRecords(hello, 100), "api.example.com", nil},
		{"split into tiny records", splitRecords(hello, 3), "api.example.com", nil},
		{"truncated", hello[:len(hello)-1], "", ErrShortHello},
		{"split truncated", splitRecords(hello, 100)[:120], "", ErrShortHello},
		{"empty", nil, "", ErrShortHello},
		{"not tls", []byte("GET / HTTP/1.1\r\n"), "", ErrNotTLS},
		{"zero-length record", []byte{0x16, 3, 1, 0, 0}, "", ErrNotTLS},
		{"huge record", []byte{0x16, 3, 1, 0xff, 0xff}, "", ErrNotTLS},
		{"server hello", []byte{0x16, 3, 3, 0, 4, 2, 0, 0, 0}, "", ErrNotTLS},
		{"malformed body", []byte{0x16, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSNI(tt.in)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseSNI = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseSNIEveryPrefix(t *testing.T) {
	hello := clientHelloBytes(t, "prefix.test")
	for i := range len(hello) {
		if _, err := ParseSNI(hello[:i]); !errors.Is(err, ErrShortHello) {
			t.Fatalf("ParseSNI(first %d of %d bytes) err = %v; want ErrShortHello", i, len(hello), err)
		}
	}
}

// splitRecords re-frames a single-record ClientHello into records of at
// most n handshake bytes each.
func splitRecords(rec []byte, n int) []byte {
	hdr, body := rec[:5], rec[5:]
	var out []byte
	for len(body) > 0 {
		k := min(n, len(body))
		out = append(out, hdr[0], hdr[1], hdr[2], byte(k>>8), byte(k))
		out = append(out, body[:k]...)
		body = body[k:]
	}
	return out
}

func FuzzSNI(f *testing.F) {
	for _, sni := range []string{"example.com", "", "a.b.c.d.e.f"} {
		h := clientHelloBytes(f, sni)
		f.Add(h)
		f.Add(splitRecords(h, 50))
		f.Add(h[:len(h)/2])
	}
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{0x16, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		// Copy into an exactly-sized slice so any read past len(b) panics
		// under the bounds checks rather than reading spare capacity.
		in := append([]byte(nil), b...)[:len(b):len(b)]
		sni, err := ParseSNI(in)
		if err != nil && sni != "" {
			t.Fatalf("ParseSNI returned %q with error %v", sni, err)
		}
		if len(sni) > maxHostNameLen {
			t.Fatalf("SNI of %d bytes", len(sni))
		}
		s, _ := Sniff(in)
		if s.SNI != "" && s.Protocol != DetectedTLS {
			t.Fatalf("SNI %q without TLS", s.SNI)
		}
	})
}
