package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/upstream"
)

const testConfig = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.example]
  addresses: [198.18.0.10]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo}
spec:
  hosts: [echo.example]
  addresses: [198.18.0.11]
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: auto}
spec:
  hosts: [auto.example]
  addresses: [198.18.0.12]
  ports: [{number: 2525, name: smtp}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: range}
spec:
  hosts: [range.example]
  addresses: [198.19.0.0/16]
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.example]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: self}
spec:
  hosts: [self.example]
  ports: [{number: 7070, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: 7071}}]
`

const registryOnly = `
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`

func testStore(t *testing.T, yaml string) *snapshot.Store {
	t.Helper()
	set, diags := config.Parse("test.yaml", []byte(yaml), config.Options{})
	snap, err := snapshot.Build(set, diags, snapshot.Options{})
	if err != nil {
		t.Fatalf("snapshot: %v\n%v", err, diags)
	}
	st := &snapshot.Store{}
	st.Swap(snap)
	return st
}

// fakeHTTP records the connections handed to the HTTP chain and answers
// each with the request line it read.
type fakeHTTP struct {
	mu    sync.Mutex
	infos []ConnInfo
}

func (f *fakeHTTP) ServeConn(c net.Conn, ci *ConnInfo) {
	f.mu.Lock()
	f.infos = append(f.infos, *ci)
	f.mu.Unlock()
	line, _ := bufio.NewReader(c).ReadString('\n')
	io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Line: "+strings.TrimSpace(line)+"\r\n\r\n")
}

func (f *fakeHTTP) last(t *testing.T) ConnInfo {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.infos) == 0 {
		t.Fatal("no connection reached the HTTP chain")
	}
	return f.infos[len(f.infos)-1]
}

// testListener serves l on loopback with every connection's original
// destination reported as dst (an invalid dst: SO_ORIGINAL_DST fails).
type testListener struct {
	*Listener
	addr    string
	http    *fakeHTTP
	mu      sync.Mutex
	dialed  []string
	records []*TCPRecord
	backend string
}

func startListener(t *testing.T, st *snapshot.Store, inbound bool, dst netip.AddrPort, backend string, setup ...func(*Listener)) *testListener {
	t.Helper()
	tl := &testListener{http: &fakeHTTP{}, backend: backend}
	tl.Listener = &Listener{Name: "test", Inbound: inbound, Store: st, HTTP: tl.http, SniffTimeout: 50 * time.Millisecond, IdleTimeout: -1}
	tl.origDst = func(*net.TCPConn) (netip.AddrPort, error) {
		if !dst.IsValid() {
			return netip.AddrPort{}, errors.New("no original destination")
		}
		return dst, nil
	}
	tl.dialCluster = func(ctx context.Context, cluster string, opt upstream.AttemptOptions) (net.Conn, error) {
		tl.mu.Lock()
		tl.dialed = append(tl.dialed, cluster)
		tl.mu.Unlock()
		addr := tl.backend
		if cluster == PassthroughCluster {
			addr = opt.Original.String()
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	tl.OnTCP = func(r *TCPRecord) {
		tl.mu.Lock()
		tl.records = append(tl.records, r)
		tl.mu.Unlock()
	}
	for _, f := range setup {
		f(tl.Listener)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- tl.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		tl.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrListenerClosed) {
			t.Errorf("Serve = %v; want ErrListenerClosed", err)
		}
	})
	return tl
}

func (tl *testListener) dials() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]string(nil), tl.dialed...)
}

func (tl *testListener) record(t *testing.T) *TCPRecord {
	t.Helper()
	for range 200 {
		tl.mu.Lock()
		n := len(tl.records)
		tl.mu.Unlock()
		if n > 0 {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			return tl.records[n-1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no TCP record")
	return nil
}

// echoServer accepts connections; each gets banner (if any) then an
// echo of what it sends.
func echoServer(t *testing.T, banner string) string {
	t.Helper()
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
			go func() {
				defer c.Close()
				if banner != "" {
					io.WriteString(c, banner)
				}
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dialTest(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func roundTrip(t *testing.T, c net.Conn, msg string) string {
	t.Helper()
	io.WriteString(c, msg)
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading echo of %q: %v", msg, err)
	}
	return string(buf)
}

func TestOutboundTCP(t *testing.T) {
	st := testStore(t, testConfig)
	backend := echoServer(t, "")
	tests := []struct {
		name, dst, cluster string
	}{
		{"vip", "198.18.0.11:9000", "outbound|9000||echo.example"},
		{"cidr", "198.19.4.5:9000", "outbound|9000||range.example"},
		{"no addresses hijacks the port", "203.0.113.7:5432", "outbound|5432||db.example"},
		{"unknown destination passes through", backend, PassthroughCluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := startListener(t, st, false, netip.MustParseAddrPort(tt.dst), backend)
			c := dialTest(t, tl.addr)
			if got := roundTrip(t, c, "\x00hello"); got != "\x00hello" {
				t.Errorf("echo = %q; want %q", got, "\x00hello")
			}
			c.Close()
			r := tl.record(t)
			if r.Cluster != tt.cluster || r.Result.Received != 6 || r.Result.Sent != 6 {
				t.Errorf("record cluster %q received %d sent %d; want %q 6 6", r.Cluster, r.Result.Received, r.Result.Sent, tt.cluster)
			}
		})
	}
}

func TestOutboundHTTP(t *testing.T) {
	st := testStore(t, testConfig)
	tests := []struct {
		name, dst, host string
		explicit        bool
	}{
		{"vip", "198.18.0.10:80", "web.example", false},
		{"any address on an HTTP port", "10.1.2.3:80", "", false},
		{"sniffed on an undeclared port", "198.18.0.12:2525", "auto.example", false},
		{"sniffed unknown destination", "10.1.2.3:8080", "", false},
		{"explicit proxy", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst netip.AddrPort
			if tt.dst != "" {
				dst = netip.MustParseAddrPort(tt.dst)
			}
			tl := startListener(t, st, false, dst, "")
			c := dialTest(t, tl.addr)
			io.WriteString(c, "GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, _ := io.ReadAll(bufio.NewReader(io.LimitReader(c, 200)))
			if !strings.Contains(string(resp), "X-Line: GET /status/200 HTTP/1.1") {
				t.Errorf("response %q does not echo the request line (peeked bytes lost?)", resp)
			}
			ci := tl.http.last(t)
			if hostOf(ci.Service) != tt.host || ci.Explicit != tt.explicit || ci.Inbound {
				t.Errorf("ConnInfo service %q explicit %v inbound %v; want %q %v false", hostOf(ci.Service), ci.Explicit, ci.Inbound, tt.host, tt.explicit)
			}
			if !tt.explicit && ci.Original != dst {
				t.Errorf("Original = %v; want %v", ci.Original, dst)
			}
		})
	}
}

func TestOutboundServerFirstOnUndeclaredPort(t *testing.T) {
	st := testStore(t, testConfig)
	backend := echoServer(t, "220 ready\r\n")
	tl := startListener(t, st, false, netip.MustParseAddrPort("198.18.0.12:2525"), backend)
	c := dialTest(t, tl.addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "220 ready\r\n" {
		t.Fatalf("banner = %q, %v; want %q", line, err, "220 ready\r\n")
	}
	if got := roundTrip(t, c, "EHLO x\r\n"); got != "EHLO x\r\n" {
		t.Errorf("echo = %q", got)
	}
	c.Close()
	if r := tl.record(t); r.Cluster != "outbound|2525||auto.example" || r.Detected != DetectedTCP {
		t.Errorf("record cluster %q detected %v; want outbound|2525||auto.example tcp", r.Cluster, r.Detected)
	}
}

func TestOutboundRegistryOnlyClosesUnknown(t *testing.T) {
	st := testStore(t, testConfig+registryOnly)
	backend := echoServer(t, "")
	tl := startListener(t, st, false, netip.MustParseAddrPort(backend), backend)
	c := dialTest(t, tl.addr)
	io.WriteString(c, "\x00data")
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes; want the connection closed", n)
	}
	r := tl.record(t)
	if r.Cluster != BlackHoleCluster || r.Flags.String() != "UH" {
		t.Errorf("record cluster %q flags %v; want BlackHoleCluster [UH]", r.Cluster, r.Flags)
	}
	if d := tl.dials(); len(d) != 0 {
		t.Errorf("dialed %v; want nothing", d)
	}
}

func TestOutboundConnectFailure(t *testing.T) {
	st := testStore(t, testConfig)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	tl := startListener(t, st, false, netip.MustParseAddrPort("198.18.0.11:9000"), dead)
	c := dialTest(t, tl.addr)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection open after the upstream refused")
	}
	if r := tl.record(t); r.Flags.String() != "UF" {
		t.Errorf("flags %v; want [UF]", r.Flags)
	}
}

func TestOutboundLoopIsClosed(t *testing.T) {
	st := testStore(t, testConfig)
	tl := startListener(t, st, false, netip.MustParseAddrPort("198.18.0.11:9000"), "")
	// Reserve a local port, mark it as one of the listener's own upstream
	// sockets, and connect from it.
	tmp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	local := tmp.Addr().(*net.TCPAddr)
	tmp.Close()
	tl.own.Store(addrPortOf(local), struct{}{})
	c, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", tl.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection from the listener's own socket was served")
	}
	if d := tl.dials(); len(d) != 0 {
		t.Errorf("dialed %v; want nothing", d)
	}
}

func TestNoSnapshotCloses(t *testing.T) {
	tl := startListener(t, &snapshot.Store{}, false, netip.MustParseAddrPort("198.18.0.11:9000"), "")
	c := dialTest(t, tl.addr)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("served before any snapshot")
	}
}

func TestShutdownClosesLongConnections(t *testing.T) {
	st := testStore(t, testConfig)
	backend := echoServer(t, "")
	tl := startListener(t, st, false, netip.MustParseAddrPort("198.18.0.11:9000"), backend)
	c := dialTest(t, tl.addr)
	roundTrip(t, c, "x")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := tl.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v; want DeadlineExceeded (a connection was open)", err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection open after Shutdown")
	}
	if _, err := net.DialTimeout("tcp", tl.addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

const tlsConfig = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: tls}
spec:
  hosts: [a.tls.example, b.tls.example]
  addresses: [198.18.0.20]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tls}
spec:
  hosts: [a.tls.example, b.tls.example]
  tls:
  - match: [{sniHosts: [b.tls.example]}]
    route: [{destination: {host: b.tls.example}}]
  - match: [{sniHosts: [a.tls.example]}]
    route: [{destination: {host: a.tls.example}}]
`

func TestOutboundTLSRoutesBySNI(t *testing.T) {
	st := testStore(t, tlsConfig)
	backend := echoServer(t, "")
	for _, sni := range []string{"a.tls.example", "b.tls.example"} {
		t.Run(sni, func(t *testing.T) {
			tl := startListener(t, st, false, netip.MustParseAddrPort("198.18.0.20:443"), backend)
			hello := clientHelloBytes(t, sni)
			c := dialTest(t, tl.addr)
			if got := roundTrip(t, c, string(hello)); got != string(hello) {
				t.Errorf("ClientHello not forwarded intact")
			}
			c.Close()
			r := tl.record(t)
			if want := "outbound|443||" + sni; r.Cluster != want || r.SNI != sni || r.Detected != DetectedTLS {
				t.Errorf("record cluster %q sni %q detected %v; want %q %q tls", r.Cluster, r.SNI, r.Detected, want, sni)
			}
		})
	}
}

// TestOutboundTCPIdleTimeoutFromDestinationRule: a DestinationRule's
// connectionPool.tcp.idleTimeout closes a quiet TCP connection (the
// listener's own timeout is off in these tests).
func TestOutboundTCPIdleTimeoutFromDestinationRule(t *testing.T) {
	st := testStore(t, testConfig+`---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec:
  host: echo.example
  trafficPolicy:
    connectionPool:
      tcp: {idleTimeout: 200ms}
`)
	backend := echoServer(t, "")
	tl := startListener(t, st, false, netip.MustParseAddrPort("198.18.0.11:9000"), backend)
	c := dialTest(t, tl.addr)
	start := time.Now() // the last byte moves after this
	if got := roundTrip(t, c, "hi"); got != "hi" {
		t.Fatalf("echo = %q", got)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read after quiet period = %d, %v; want the proxy to close", n, err)
	}
	// The kernel's TCP_INFO ages have jiffy resolution: allow 20 ms early.
	if d := time.Since(start); d < 180*time.Millisecond || d > 4*time.Second {
		t.Fatalf("closed %v after the last data; want about 200ms", d)
	}
	if r := tl.record(t); !r.Result.IdleTimeout {
		t.Errorf("record IdleTimeout = false")
	}
}
