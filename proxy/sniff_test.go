package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSniff(t *testing.T) {
	hello := clientHelloBytes(t, "Example.COM")
	tests := []struct {
		name string
		in   string
		want Detected
		sni  string
		more bool
	}{
		{"empty", "", DetectedTCP, "", true},
		{"get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", DetectedHTTP1, "", false},
		{"get bare LF", "GET /x HTTP/1.1\nHost: a\n\n", DetectedHTTP1, "", false},
		{"post line only", "POST /upload?x=1 HTTP/1.1\r\n", DetectedHTTP1, "", false},
		{"m-search", "M-SEARCH * HTTP/1.1\r\n", DetectedHTTP1, "", false},
		{"connect", "CONNECT a:443 HTTP/1.1\r\n", DetectedHTTP1, "", false},
		{"method prefix", "GE", DetectedTCP, "", true},
		{"target prefix", "GET /abc", DetectedTCP, "", true},
		{"version prefix", "GET / HTTP/1.", DetectedTCP, "", true},
		{"no CRLF yet", "GET / HTTP/1.1", DetectedTCP, "", true},
		{"CR only", "GET / HTTP/1.1\r", DetectedTCP, "", true},
		{"http 1.0 is tcp", "GET / HTTP/1.0\r\n\r\n", DetectedTCP, "", false},
		{"http 2.0 line", "GET / HTTP/2.0\r\n", DetectedTCP, "", false},
		{"lower-case method", "get / HTTP/1.1\r\n", DetectedTCP, "", false},
		{"two spaces", "GET  / HTTP/1.1\r\n", DetectedTCP, "", false},
		{"control in target", "GET /\x01 HTTP/1.1\r\n", DetectedTCP, "", false},
		{"long method", strings.Repeat("A", 30) + " / HTTP/1.1\r\n", DetectedTCP, "", false},
		{"h2 preface", h2Preface, DetectedH2C, "", false},
		{"h2 preface and frames", h2Preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00", DetectedH2C, "", false},
		{"h2 prefix", "PRI * HTTP/2", DetectedTCP, "", true},
		{"h2 wrong tail", "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", DetectedTCP, "", false},
		{"smtp banner reply", "EHLO x\r\n", DetectedTCP, "", false},
		{"mysql-ish binary", "\x4a\x00\x00\x00\x0a8.0", DetectedTCP, "", false},
		{"garbage", "\xff\xfe\x00garbage", DetectedTCP, "", false},
		{"tls", string(hello), DetectedTLS, "example.com", false},
		{"tls truncated", string(hello[:len(hello)/2]), DetectedTLS, "", true},
		{"tls header only", string(hello[:5]), DetectedTLS, "", true},
		{"tls one byte", "\x16", DetectedTLS, "", true},
		{"tls bad version", "\x16\x07\x01\x00\x10", DetectedTCP, "", false},
		{"tls alert record", "\x15\x03\x01\x00\x02\x02\x28", DetectedTCP, "", false},
		{"tls not hello", "\x16\x03\x01\x00\x04\x02\x00\x00\x00", DetectedTCP, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, more := Sniff([]byte(tt.in))
			if s.Protocol != tt.want || s.SNI != tt.sni || more != tt.more {
				t.Errorf("Sniff(%q) = %v %q more=%v; want %v %q more=%v", tt.in, s.Protocol, s.SNI, more, tt.want, tt.sni, tt.more)
			}
		})
	}
}

// clientHelloBytes returns the first flight crypto/tls sends for sni.
func clientHelloBytes(t testing.TB, sni string) []byte {
	t.Helper()
	cc, sc := net.Pipe()
	go func() {
		c := tls.Client(cc, &tls.Config{ServerName: sni, InsecureSkipVerify: sni == "", NextProtos: []string{"h2", "http/1.1"}})
		c.Handshake()
		cc.Close()
	}()
	defer sc.Close()
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		sc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := sc.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if _, herr := clientHello(buf); herr == nil {
			return buf
		}
		if err != nil {
			t.Fatalf("reading ClientHello: %v (have %d bytes)", err, len(buf))
		}
	}
}

func TestSniffConnReplays(t *testing.T) {
	tests := []struct {
		name  string
		write string
		close bool
		want  Detected
	}{
		{"http", "GET / HTTP/1.1\r\nHost: x\r\n\r\nbody", false, DetectedHTTP1},
		{"tcp client-first", "\x00\x01binary", false, DetectedTCP},
		{"server-first: nothing before timeout", "", false, DetectedTCP},
		{"partial then timeout", "GET /slow", false, DetectedTCP},
		{"partial then EOF", "GET /", true, DetectedTCP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tcpPair(t)
			if tt.write != "" {
				io.WriteString(a, tt.write)
			}
			if tt.close {
				a.(*net.TCPConn).CloseWrite()
			}
			start := time.Now()
			pc, s, err := SniffConn(b, 50*time.Millisecond)
			if err != nil {
				t.Fatalf("SniffConn: %v", err)
			}
			if s.Protocol != tt.want {
				t.Errorf("protocol = %v; want %v", s.Protocol, tt.want)
			}
			if tt.want == DetectedHTTP1 && time.Since(start) > 40*time.Millisecond {
				t.Errorf("HTTP detection took %v; want it without waiting for the timeout", time.Since(start))
			}
			if !tt.close {
				a.(*net.TCPConn).CloseWrite()
			}
			got, _ := io.ReadAll(pc)
			if string(got) != tt.write {
				t.Errorf("replayed %q; want %q", got, tt.write)
			}
			if len(pc.Pending()) == 0 && pc.Unwrap() != b {
				t.Errorf("Unwrap with nothing pending = %T; want the TCP conn", pc.Unwrap())
			}
		})
	}
}

func TestSniffConnEOFBeforeData(t *testing.T) {
	a, b := tcpPair(t)
	a.Close()
	if _, _, err := SniffConn(b, time.Second); err == nil {
		t.Errorf("SniffConn on a closed peer: err = nil; want EOF")
	}
}

func TestPeekedConnUnwrap(t *testing.T) {
	a, b := tcpPair(t)
	pc := &PeekedConn{Conn: b, pending: []byte("xy")}
	if pc.Unwrap() != pc {
		t.Errorf("Unwrap with pending bytes should return the wrapper")
	}
	go a.Write([]byte("z"))
	buf := make([]byte, 1)
	var got bytes.Buffer
	for got.Len() < 3 {
		n, err := pc.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
	}
	if got.String() != "xyz" {
		t.Errorf("read %q; want %q", got.String(), "xyz")
	}
	if tcpConn(pc) != b.(*net.TCPConn) {
		t.Errorf("tcpConn(drained PeekedConn) did not find the TCP conn")
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-ch
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	// Bound every test that reads or writes them.
	dl := time.Now().Add(10 * time.Second)
	client.SetDeadline(dl)
	server.SetDeadline(dl)
	return client, server
}
