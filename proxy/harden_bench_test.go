package proxy

import (
	"net"
	"testing"
	"time"
)

// loopConn serves the same bytes forever, for the guard benchmark.
type loopConn struct {
	net.Conn
	data []byte
	off  int
}

func (c *loopConn) Read(p []byte) (int, error) {
	n := copy(p, c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}

// BenchmarkH1Guard measures the guard's cost per typical request head
// (about 350 bytes, 8 headers, keep-alive).
func BenchmarkH1Guard(b *testing.B) {
	head := []byte("GET /productpage?u=normal HTTP/1.1\r\nHost: productpage.default.svc.cluster.local:9080\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Encoding: gzip, deflate\r\n" +
		"Accept-Language: en-US,en;q=0.9\r\nCookie: session=0123456789abcdef\r\nX-Request-Id: 7c940b08-cc8f-44b2-be4c-a69b753bbe5d\r\n" +
		"Connection: keep-alive\r\n\r\n")
	g := newH1Guard(&loopConn{data: head}, time.Minute)
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := g.Read(buf); err != nil || n != len(head) {
			b.Fatalf("read %d, %v", n, err)
		}
		if n, _ := g.Read(buf[:0]); n != 0 { // the empty body ends the message
			b.Fatal("unexpected bytes")
		}
	}
}
