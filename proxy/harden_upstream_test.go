package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/upstream"
)

// rawBackend accepts connections on 127.0.0.1 and runs serve on each.
func rawBackend(t *testing.T, serve func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// readHead reads one request head from br.
func readHead(br *bufio.Reader) bool {
	for range 200 {
		l, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if l == "\r\n" {
			return true
		}
	}
	return false
}

func rawEntry(host string, port int, extra string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %s}
spec:
  hosts: [%s]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: %d}}]
%s`, strings.ReplaceAll(host, ".", "-"), host, port, extra)
}

// waitGoroutines waits (bounded) for the goroutine count to come back
// to at most base+slack.
func waitGoroutines(t *testing.T, base, slack int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+slack && time.Now().Before(deadline) {
		runtime.Gosched()
		tm := time.NewTimer(20 * time.Millisecond)
		<-tm.C
	}
	if n := runtime.NumGoroutine(); n > base+slack {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines; want at most %d\n%s", n, base+slack, buf[:runtime.Stack(buf, true)])
	}
}

func TestFailingUpstreams(t *testing.T) {
	resetBefore := rawBackend(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) {
			c.(*net.TCPConn).SetLinger(0) // RST
		}
	})
	resetMid := rawBackend(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			c.(*net.TCPConn).SetLinger(0)
		}
	})
	silent := rawBackend(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	garbage := rawBackend(t, func(c net.Conn) {
		if readHead(bufio.NewReader(c)) {
			io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
		}
	})
	refused := func() int { // a port nothing listens on
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		return p
	}()
	timeoutVS := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: silent-timeout}
spec:
  hosts: [silent-t.example]
  http: [{timeout: 300ms, route: [{destination: {host: silent.example}}]}]
`
	p := startProxy(t, 80, rawEntry("reset-before.example", resetBefore, ""), rawEntry("reset-mid.example", resetMid, ""),
		rawEntry("silent.example", silent, "")+timeoutVS, rawEntry("silent-t.example", silent, ""), rawEntry("garbage.example", garbage, ""),
		rawEntry("refused.example", refused, ""))
	tests := []struct {
		host   string
		status int // 0: the response is cut short
		body   string
	}{
		{"reset-before.example", 503, bodyReset},                     // UC
		{"reset-mid.example", 0, ""},                                 // headers sent: the downstream is reset too
		{"silent-t.example", 504, bodyTimeout},                       // UT
		{"garbage.example", 503, bodyProtocol},                       // UPE
		{"refused.example", 503, bodyRetried + "connection failure"}, // UF after Istio's default retries (URX)
	}
	c := p.client()
	base := runtime.NumGoroutine()
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+tt.host+"/", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.status == 0 {
				if rerr == nil {
					t.Errorf("body %q read whole; want it cut short", b)
				}
				return
			}
			if resp.StatusCode != tt.status || string(b) != tt.body {
				t.Errorf("got %d %q; want %d %q", resp.StatusCode, b, tt.status, tt.body)
			}
		})
	}
	// No route timeout: Istio waits for the upstream as long as the client
	// does; the client leaving ends it (DC) and leaks nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://silent.example/", nil)
	if _, err := c.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent upstream without a timeout: %v; want the client's deadline", err)
	}
	cancel()
	c.CloseIdleConnections()
	waitGoroutines(t, base, 10)
}

// TestIdleCloseRace: a server whose keep-alive timeout is just above the
// pool's idle timeout never produces a 503, whatever the gaps between
// requests.
func TestIdleCloseRace(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	be.Config.IdleTimeout = 250 * time.Millisecond
	be.Start()
	t.Cleanup(be.Close)
	port := be.Listener.Addr().(*net.TCPAddr).Port
	dr := `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: idle}
spec:
  host: idle.example
  trafficPolicy: {connectionPool: {http: {idleTimeout: 200ms}}}
`
	p := startProxy(t, 80, rawEntry("idle.example", port, dr))
	c := p.client()
	for i := range 12 {
		if code, _, body := p.get(t, c, "idle.example", "/"); code != 200 {
			t.Fatalf("request %d: %d %q; want 200", i, code, body)
		}
		gap := time.NewTimer(time.Duration(150+20*i) * time.Millisecond) // 150ms..370ms, across the server's 250ms
		<-gap.C
	}
}

func TestUnwrittenRetry(t *testing.T) {
	written := &upstream.ResetError{Addr: "a", Written: true, Err: io.EOF}
	unwritten := &upstream.ResetError{Addr: "a", Err: io.EOF}
	tests := []struct {
		name string
		err  error
		b    *body
		done int
		want bool
	}{
		{"never written", unwritten, &body{}, 0, true},
		{"second time", unwritten, &body{}, 1, true},
		{"bounded", unwritten, &body{}, maxUnwrittenRetries, false},
		{"written", written, &body{}, 0, false},
		{"body not replayable", unwritten, &body{rest: strings.NewReader("x")}, 0, false},
		{"connect error", &upstream.ConnectError{Addr: "a", Err: io.EOF}, &body{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := attempt{err: tt.err, kind: routing.FailureResetBeforeRequest}
			if got := unwrittenRetry(context.Background(), &a, tt.b, tt.done); got != tt.want {
				t.Errorf("unwrittenRetry = %v; want %v", got, tt.want)
			}
		})
	}
}
