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

// FuzzParseHead checks the HTTP/1 codec's head parser against
// net/http's: it never panics, and every head it accepts net/http reads
// the same way (method, target, host, fields); it never accepts what
// net/http refuses, except where Envoy is the looser one.
func FuzzParseHead(f *testing.F) {
	for _, s := range hostileSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		end := headEnd(in, 0)
		if end < 0 || end > MaxRequestHeadersBytes {
			return
		}
		hr := new(h1req)
		info, status, _ := parseHead(string(in[:end]), hr)
		if status != 0 || !parseTarget(&hr.req, &hr.url) {
			return
		}
		r := &hr.req
		if len(r.Header) > MaxRequestHeaders {
			t.Fatalf("head with %d fields accepted", len(r.Header))
		}
		if info.chunked && info.length > 0 {
			t.Fatal("CL and TE accepted together")
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(in[:end])))
		if err != nil {
			if r.ProtoMinor == 0 || strings.Contains(err.Error(), "invalid") {
				return // HTTP/1.0 (answered 426) and net/http's stricter value checks
			}
			t.Fatalf("accepted a head net/http refuses (%v): %q", err, in[:end])
		}
		if want.Method != r.Method || want.RequestURI != r.RequestURI || want.Host != r.Host || want.URL.String() != r.URL.String() {
			t.Fatalf("request line: got %s %s %s (%s), net/http %s %s %s (%s)", r.Method, r.RequestURI, r.Host, r.URL, want.Method, want.RequestURI, want.Host, want.URL)
		}
		for k, vs := range want.Header {
			if strings.Join(vs, ",") != strings.Join(r.Header[k], ",") {
				t.Fatalf("field %s: got %q, net/http %q", k, r.Header[k], vs)
			}
		}
		if len(want.Header) != len(r.Header) {
			t.Fatalf("fields: got %v, net/http %v", r.Header, want.Header)
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
