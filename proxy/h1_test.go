package proxy

import (
	"bufio"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoBackend answers with the request's method and body.
func echoBackend(t *testing.T) *backend {
	return newBackend(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b))
	})
}

// localVS answers /local on host a itself (204), routing the rest to a.
const localVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a}
spec:
  hosts: [a]
  http:
  - match: [{uri: {prefix: /local}}]
    directResponse: {status: 204}
  - route: [{destination: {host: a}}]
`

// rawConn dials the proxy for hand-written requests.
func rawConn(t *testing.T, p *testProxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestH1Pipelining sends three requests in one write (no body, a
// Content-Length body, a chunked body with extensions and a trailer):
// three answers come back in order on the same connection. (The trailer
// is not forwarded: a buffered body goes upstream with a Content-Length,
// and Envoy's HTTP/1 codec drops trailers unless enable_trailers is set.)
func TestH1Pipelining(t *testing.T) {
	p := startProxy(t, 80, serviceEntry("echo", 80, "HTTP", echoBackend(t)))
	c, br := rawConn(t, p)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: echo\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: echo\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /c HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\nTrailer: T\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nT: tv\r\n\r\n")
	for _, want := range []string{"GET ", "POST hello", "POST abcde"} {
		resp, body := readResp(t, br, "GET")
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
}

// TestH1ExpectContinue: the client waits for 100 Continue before it sends
// the body, as curl does for large uploads.
func TestH1ExpectContinue(t *testing.T) {
	p := startProxy(t, 80, serviceEntry("echo", 80, "HTTP", echoBackend(t)))
	c, br := rawConn(t, p)
	io.WriteString(c, "PUT / HTTP/1.1\r\nHost: echo\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim %q, %v", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("interim head did not end: %q", l)
	}
	io.WriteString(c, "data")
	if resp, body := readResp(t, br, "PUT"); resp.StatusCode != 200 || body != "PUT data" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

// TestH1HeadAndConnectionClose: a HEAD answer has its length but no body,
// and Connection: close is honoured (answered with it, then closed).
func TestH1HeadAndConnectionClose(t *testing.T) {
	p := startProxy(t, 80, serviceEntry("a", 80, "HTTP", newBackend(t, "v1", nil)))
	c, br := rawConn(t, p)
	io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	resp, body := readResp(t, br, "HEAD")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != 2 {
		t.Fatalf("HEAD: %d, %q, length %d", resp.StatusCode, body, resp.ContentLength)
	}
	resp, body = readResp(t, br, "GET")
	if body != "v1" || !resp.Close {
		t.Fatalf("GET: %q, close %v", body, resp.Close)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after Connection: close: %d, %v", n, err)
	}
}

// TestH1UnreadBody: a request answered without reading its body (a
// direct response) leaves the connection usable when the body is small,
// and closes it when the rest is larger than the codec drains.
func TestH1UnreadBody(t *testing.T) {
	p := startProxy(t, 80, serviceEntry("a", 80, "HTTP", newBackend(t, "v1", nil)), localVS)
	c, br := rawConn(t, p)
	io.WriteString(c, "POST /local HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, _ := readResp(t, br, "POST"); resp.StatusCode != 204 {
		t.Fatalf("direct response %d", resp.StatusCode)
	}
	if resp, body := readResp(t, br, "GET"); resp.StatusCode != 200 || body != "v1" {
		t.Fatalf("next request: %d %q", resp.StatusCode, body)
	}
	c2, br2 := rawConn(t, p)
	io.WriteString(c2, "POST /local HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n")
	go c2.Write(make([]byte, 1<<20))
	if resp, _ := readResp(t, br2, "POST"); resp.StatusCode != 204 {
		t.Fatalf("direct response %d", resp.StatusCode)
	}
	if _, err := io.Copy(io.Discard, br2); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("connection not closed after an undrained body: %v", err)
	}
}

// TestH1ClientGoneCancelsUpstream: a client that leaves while the
// upstream is still answering cancels the upstream request.
func TestH1ClientGoneCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(canceled)
		case <-time.After(5 * time.Second):
		}
	})
	p := startProxy(t, 80, serviceEntry("slow", 80, "HTTP", slow))
	c, _ := rawConn(t, p)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: slow\r\n\r\n")
	for deadline := time.Now().Add(5 * time.Second); slow.hits.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	select {
	case <-canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("the upstream request outlived its client")
	}
}

// TestH1PanicRecovered: a panic in the chain (here: no upstream manager)
// closes that connection and is logged, as net/http's server does; the
// proxy keeps serving.
func TestH1PanicRecovered(t *testing.T) {
	p := startProxy(t, 80, serviceEntry("a", 80, "HTTP", newBackend(t, "v1", nil)))
	var logged strings.Builder
	var mu sync.Mutex
	log.SetOutput(writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logged.Write(b) }))
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	up := p.h.Upstream
	p.configure(func(h *HTTPServer) { h.Upstream = nil })
	c, br := rawConn(t, p)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("an answer after a panic")
	}
	mu.Lock()
	if !strings.Contains(logged.String(), "panic serving") {
		t.Fatalf("log: %q", logged.String())
	}
	mu.Unlock()
	p.configure(func(h *HTTPServer) { h.Upstream = up })
	if code, _, body := p.get(t, p.client(), "a", "/"); code != 200 || body != "v1" {
		t.Fatalf("after the panic: %d %q", code, body)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestH1IdleTimeout: a keep-alive connection without a request for the
// idle timeout is closed, but a body that keeps arriving past it is not
// cut off (the deadline moves on while bytes come).
func TestH1IdleTimeout(t *testing.T) {
	p := startProxy(t, 80, serviceEntry("echo", 80, "HTTP", echoBackend(t)))
	p.configure(func(h *HTTPServer) { h.IdleTimeout = 150 * time.Millisecond })
	c, br := rawConn(t, p)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: echo\r\nContent-Length: 8\r\n\r\n")
	for _, b := range "slowbody" { // 8 bytes over 400 ms
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, string(b))
	}
	if resp, body := readResp(t, br, "POST"); resp.StatusCode != 200 || body != "POST slowbody" {
		t.Fatalf("slow body: %d %q", resp.StatusCode, body)
	}
	start := time.Now()
	if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("idle connection: read %d, %v; want it closed", n, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle connection closed after %v; want about 150ms", d)
	}
}
