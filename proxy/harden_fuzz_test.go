package proxy

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remora-mesh/remora/routing"
)

// hostileSeeds are request streams for the HTTP front-end fuzz targets.
var hostileSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
	"GET http://other/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT a:80 HTTP/1.1\r\nHost: a:80\r\n\r\nxyz",
	"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	h2Preface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00",
	"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
}

// runGuard feeds in through a guard and returns everything it passes on.
func runGuard(t *testing.T, in []byte) []byte {
	c1, c2 := net.Pipe()
	go func() {
		c2.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c2.Write(in)
		c2.Close()
	}()
	g := newH1Guard(c1, time.Minute)
	defer c1.Close()
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out bytes.Buffer
	buf := make([]byte, 512)
	for range 1 << 20 {
		n, err := g.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("guard hung on %q", in)
			}
			break
		}
	}
	return out.Bytes()
}

// FuzzH1Guard checks the HTTP/1 guard alone: it ends on any input, never
// passes on more than it was given (plus one sentinel), and every head it
// passes on in guarded mode parses with net/http.
func FuzzH1Guard(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := runGuard(t, in)
		if len(out) > len(in)+128 {
			t.Fatalf("passed on %d bytes of %d", len(out), len(in))
		}
		if bytes.HasPrefix(in, []byte("PRI")) {
			return
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for range 64 {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if req.Method == http.MethodConnect || req.Header.Get("Upgrade") != "" {
				return
			}
			if len(req.Header) > MaxRequestHeaders {
				t.Fatalf("head with %d headers passed", len(req.Header))
			}
			if len(req.TransferEncoding) > 0 && req.Header.Get("Content-Length") != "" {
				t.Fatal("CL and TE passed together")
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
		}
	})
}

// panicWatch fails t when net/http logs a recovered panic.
type panicWatch struct{ panics atomic.Int64 }

func (p *panicWatch) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("panic")) {
		p.panics.Add(1)
	}
	return len(b), nil
}

// FuzzFrontEnd sends raw bytes to a live HTTPServer on a loopback
// connection: the server must answer or close within a bound, never
// panic, and keep serving.
func FuzzFrontEnd(f *testing.F) {
	be := newBackend(f, "v1", nil)
	p := startProxy(f, 80, serviceEntry("a", 80, "HTTP", be))
	pw := &panicWatch{}
	log.SetOutput(pw)
	f.Cleanup(func() { log.SetOutput(io.Discard) })
	for _, s := range hostileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("no answer or close within 10s: %v", err)
		}
		if n := pw.panics.Load(); n > 0 {
			t.Fatalf("%d panics served", n)
		}
	})
}

// FuzzHeaderPrep runs the proxy's header preparation (hop-by-hop removal,
// route header operations) on fuzzed headers and writes the result as
// the upstream request: nothing may be injected, and no hop-by-hop header
// named by Connection may survive.
func FuzzHeaderPrep(f *testing.F) {
	f.Add("Connection: x-drop\nX-Drop: 1\nX-Keep: 2", "x-set", "v\r\nX-Injected: 1", "x-add", "a")
	f.Add("Te: trailers\nKeep-Alive: 5\nUpgrade: h2c", "Host", "evil", "x-a", "\x00")
	f.Add("X: \r\n\r\nGET / HTTP/1.1", "a b", "c", "", "")
	f.Fuzz(func(t *testing.T, raw, setName, setValue, addName, addValue string) {
		h := http.Header{}
		for _, line := range strings.Split(raw, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				h.Add(k, strings.TrimSpace(v))
			}
		}
		named := h.Values("Connection")
		removeHop(h)
		ops := routing.HeaderOps{
			Set: []routing.Header{{Name: textproto.CanonicalMIMEHeaderKey(setName), Value: setValue}},
			Add: []routing.Header{{Name: textproto.CanonicalMIMEHeaderKey(addName), Value: addValue}},
		}
		ops.Apply(h)
		want := map[string]bool{"Host": true, "User-Agent": true, "Content-Length": true}
		for k := range h {
			want[textproto.CanonicalMIMEHeaderKey(k)] = true
		}
		req := &http.Request{Method: "GET", URL: mustURL("/"), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Host: "a"}
		var buf bytes.Buffer
		if err := req.Write(&buf); err != nil {
			return
		}
		got, err := http.ReadRequest(bufio.NewReader(&buf))
		if err != nil && hasCTL(h) {
			return // a control character from config: config validation's to refuse (see the issue 8 report)
		}
		if err != nil {
			t.Fatalf("upstream request does not parse: %v\n%q", err, buf.String())
		}
		for k := range got.Header {
			if !want[k] {
				t.Fatalf("header %q injected: %q", k, buf.String())
			}
		}
		for _, f := range named {
			for _, k := range splitComma(f) {
				ck := textproto.CanonicalMIMEHeaderKey(k)
				if ck != textproto.CanonicalMIMEHeaderKey(setName) && ck != textproto.CanonicalMIMEHeaderKey(addName) && got.Header.Get(ck) != "" && ck != "Host" {
					t.Fatalf("hop-by-hop %q survived", ck)
				}
			}
		}
	})
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// FuzzSniff checks protocol detection over every prefix of its input: no
// panic, no read past the bytes given, and a final verdict stays final.
func FuzzSniff(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add([]byte(s))
	}
	f.Add(clientHelloBytes(f, "example.com"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var final *Sniffed
		for i := 0; i <= len(b) && i <= 512; i++ {
			in := append([]byte(nil), b[:i]...)[:i:i]
			s, more := Sniff(in)
			if final != nil && s.Protocol != final.Protocol {
				t.Fatalf("Sniff(%q) = %v after a final %v", in, s.Protocol, final.Protocol)
			}
			if !more && final == nil {
				final = &s
			}
		}
	})
}

// hasCTL reports whether a value in h holds a control character other
// than HTAB, CR and LF (which Header.Write turns into spaces).
func hasCTL(h http.Header) bool {
	for _, vs := range h {
		for _, v := range vs {
			for i := range len(v) {
				if c := v[i]; c < ' ' && c != '\t' && c != '\r' && c != '\n' || c == 0x7f {
					return true
				}
			}
		}
	}
	return false
}
