package proxy

import (
	"testing"
)

// BenchmarkParseHead measures the HTTP/1 codec's parse of a typical
// request head (about 350 bytes, 8 headers, keep-alive).
func BenchmarkParseHead(b *testing.B) {
	head := []byte("GET /productpage?u=normal HTTP/1.1\r\nHost: productpage.default.svc.cluster.local:9080\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Encoding: gzip, deflate\r\n" +
		"Accept-Language: en-US,en;q=0.9\r\nCookie: session=0123456789abcdef\r\nX-Request-Id: 7c940b08-cc8f-44b2-be4c-a69b753bbe5d\r\n" +
		"Connection: keep-alive\r\n\r\n")
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		hr := new(h1req)
		if end := headEnd(head, 0); end != len(head) {
			b.Fatalf("head end %d", end)
		}
		if _, status, why := parseHead(string(head), hr); status != 0 {
			b.Fatal(why)
		}
		if !parseTarget(&hr.req, &hr.url) {
			b.Fatal("target")
		}
	}
}
