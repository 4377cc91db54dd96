package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// startHardened is startProxy with the HTTPServer configured by set
// before it serves.
func startHardened(t testing.TB, port uint32, set func(*HTTPServer), docs ...string) *testProxy {
	t.Helper()
	p := startProxy(t, port, docs...) // for its config dir, store and manager
	h := &HTTPServer{Store: p.store, Upstream: p.up, Rand: seeded(1)}
	if set != nil {
		set(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			remote, _ := netip.ParseAddrPort(c.RemoteAddr().String())
			orig := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(port)) // loopback: a passthrough dial is refused at once, never leaves the machine
			go h.ServeConn(c, &ConnInfo{Snapshot: p.store.Load(), Original: orig, Port: port, Remote: remote})
		}
	}()
	return &testProxy{h: h, store: p.store, up: p.up, addr: ln.Addr().String(), port: port, dir: p.dir}
}

// rawExchange writes raw on a new connection and reads one response (nil
// when the connection closed without one); closed reports whether the
// connection was closed after it, within 5s.
func rawExchange(t *testing.T, addr, raw string, wait time.Duration) (resp *http.Response, body string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", true
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(wait))
	_, err = br.ReadByte()
	return resp, string(b), err == io.EOF
}

func TestHostileRequests(t *testing.T) {
	a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "a")
	})
	b := newBackend(t, "b", nil)
	p := startProxy(t, 80, serviceEntry("a.example", 80, "HTTP", a), serviceEntry("b.example", 80, "HTTP", b))
	many := ""
	for i := range MaxRequestHeaders + 1 {
		many += fmt.Sprintf("X-H%d: v\r\n", i)
	}
	const host = "Host: a.example\r\n"
	tests := []struct {
		name, raw string
		status    int // 0: closed without an answer
		closed    bool
		hitsB     int64 // b.example's backend gets the absolute-form request
	}{
		{"CL and TE", "POST / HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + host + "\r\n", 400, true, 0},
		{"TE and CL", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400, true, 0},
		{"duplicate equal CL", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 1\r\n\r\na", 400, true, 0},
		{"duplicate differing CL", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, true, 0},
		{"CL list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1, 1\r\n\r\na", 400, true, 0},
		{"CL sign", "POST / HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\na", 400, true, 0},
		{"CL negative", "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", 400, true, 0},
		{"CL letters", "POST / HTTP/1.1\r\n" + host + "Content-Length: abc\r\n\r\n", 400, true, 0},
		{"TE gzip", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 501, true, 0},
		{"TE twice", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, true, 0},
		{"TE with space before colon", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\nContent-Length: 1\r\n\r\na", 400, true, 0},
		{"bad chunk size", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, true, 0},
		{"obs-fold", "GET / HTTP/1.1\r\n" + host + "X-A: a\r\n b\r\n\r\n", 400, true, 0},
		{"bare LF", "GET / HTTP/1.1\n" + host + "\r\n", 400, true, 0},
		{"bare LF header", "GET / HTTP/1.1\r\nHost: a.example\nX: y\r\n\r\n", 400, true, 0},
		{"bare CR", "GET / HTTP/1.1\r\nHost: a.example\rX: y\r\n\r\n", 400, true, 0},
		{"space in name", "GET / HTTP/1.1\r\n" + host + "Bad Name: x\r\n\r\n", 400, true, 0},
		{"NUL in name", "GET / HTTP/1.1\r\n" + host + "X\x00: x\r\n\r\n", 400, true, 0},
		{"NUL in value", "GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n", 400, true, 0},
		{"empty name", "GET / HTTP/1.1\r\n" + host + ": x\r\n\r\n", 400, true, 0},
		{"bad request line", "GET /a b HTTP/1.1\r\n" + host + "\r\n", 400, true, 0},
		{"headers over 60 KiB", "GET / HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("a", MaxRequestHeadersBytes) + "\r\n\r\n", 431, true, 0},
		{"101 headers", "GET / HTTP/1.1\r\n" + host + many + "\r\n", 431, true, 0},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400, true, 0},
		{"two hosts", "GET / HTTP/1.1\r\n" + host + "Host: b.example\r\n\r\n", 400, true, 0},
		{"host with space", "GET / HTTP/1.1\r\nHost: a.example b\r\n\r\n", 400, true, 0},
		{"host with slash", "GET / HTTP/1.1\r\nHost: a.example/x\r\n\r\n", 400, true, 0},
		{"smuggled second request", "GET / HTTP/1.1\r\n" + host + "\r\nGET / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 1\r\n\r\na", 200, false, 0},
		// Envoy's codec takes the authority of an absolute-form URI and
		// routes by it, on a captured listener too: b.example answers.
		{"absolute form for another host", "GET http://b.example/ HTTP/1.1\r\n" + host + "\r\n", 200, false, 1},
	}
	c := p.client()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hitsA, hitsB := a.hits.Load(), b.hits.Load()
			wait := 5 * time.Second
			if !tt.closed {
				wait = 200 * time.Millisecond // an open connection stays quiet
			}
			resp, body, closed := rawExchange(t, p.addr, tt.raw, wait)
			switch {
			case tt.status == 0 && resp != nil:
				t.Errorf("status %d; want the connection closed without an answer", resp.StatusCode)
			case tt.status != 0 && resp == nil:
				t.Fatalf("connection closed; want %d", tt.status)
			case resp != nil && resp.StatusCode != tt.status:
				t.Errorf("status %d %q; want %d", resp.StatusCode, body, tt.status)
			}
			if closed != tt.closed {
				t.Errorf("closed %v; want %v", closed, tt.closed)
			}
			wantA := int64(0)
			if tt.status == 200 && tt.hitsB == 0 {
				wantA = 1
			}
			if got := a.hits.Load() - hitsA; got != wantA {
				t.Errorf("a.example's backend saw %d requests; want %d", got, wantA)
			}
			if got := b.hits.Load() - hitsB; got != tt.hitsB {
				t.Errorf("b.example's backend saw %d requests; want %d", got, tt.hitsB)
			}
			if code, _, _ := p.get(t, c, "a.example", "/next"); code != 200 {
				t.Errorf("next request: %d; want 200", code)
			}
		})
	}
}

// TestSlowloris: a head that trickles in is cut off HeadersTimeout after
// its first byte, also on a keep-alive connection, and the proxy serves on.
func TestSlowloris(t *testing.T) {
	a := newBackend(t, "a", nil)
	p := startHardened(t, 80, func(h *HTTPServer) { h.HeadersTimeout = 300 * time.Millisecond }, serviceEntry("a.example", 80, "HTTP", a))
	for _, first := range []string{"", "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"} {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		if first != "" {
			io.WriteString(c, first)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		start := time.Now()
		var werr error
		for i := 0; i < 100 && werr == nil; i++ { // 100 bytes, one per 50ms: 5s unless cut off
			_, werr = c.Write([]byte("G"))
			tick := time.NewTimer(50 * time.Millisecond)
			<-tick.C
			c.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := br.ReadByte(); err == io.EOF {
				break
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("keep-alive %v: slow head still open after %v; want closed after ~300ms", first != "", d)
		}
		c.Close()
	}
	c := p.client()
	if code, _, _ := p.get(t, c, "a.example", "/"); code != 200 {
		t.Errorf("after slow clients: %d; want 200", code)
	}
}
