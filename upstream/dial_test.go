package upstream

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
)

func TestH2CUpstreamWithTrailers(t *testing.T) {
	protos := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Proto
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		io.Copy(w, r.Body)
		w.Header().Set("Grpc-Status", "0")
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.GRPC, snapshot.Policy{}, srv.Listener.Addr().String()))
	c := m.Cluster(clusterName(""))
	for range 3 {
		req, _ := http.NewRequest("POST", "http://"+testHost+"/pkg.Svc/Method", strings.NewReader("frame"))
		resp, _, err := c.RoundTrip(context.Background(), req, AttemptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "frame" || resp.Trailer.Get("Grpc-Status") != "0" {
			t.Fatalf("proto %s body %q grpc-status %q; want HTTP/2, frame, 0", resp.Proto, b, resp.Trailer.Get("Grpc-Status"))
		}
		if p := <-protos; p != "HTTP/2.0" {
			t.Errorf("backend saw %s; want HTTP/2.0", p)
		}
	}
	if st := c.Status(); st.RqActive != 0 || st.CxActive != 1 || st.Hosts[0].RqTotal != 3 {
		t.Errorf("rq_active %d cx_active %d rq_total %d; want 0, 1, 3", st.RqActive, st.CxActive, st.Hosts[0].RqTotal)
	}
}

func TestConnectTimeoutAndRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	m, _, _ := newTestManager(t)
	p := ejectPolicy()
	m.Update(snap(t, config.HTTP, p, closed))
	c := m.Cluster(clusterName(""))
	_, _, err = get(context.Background(), c, AttemptOptions{})
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Addr != closed {
		t.Fatalf("refused: %v; want *ConnectError for %s", err, closed)
	}
	// A connect timeout that has passed before the dial is a timeout.
	p.ConnectionPool = &config.ConnectionPoolSettings{TCP: &config.TCPSettings{ConnectTimeout: dur(time.Nanosecond)}}
	m.Update(snap(t, config.HTTP, p, closed))
	_, _, err = get(context.Background(), c, AttemptOptions{})
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v; want *ConnectError wrapping context.DeadlineExceeded", err)
	}
	// Two failures so far; the third local-origin failure ejects (they
	// count as 5xx unless split).
	get(context.Background(), c, AttemptOptions{})
	if e, _ := ejected(c, closed); !e {
		t.Error("3 connect failures did not eject the endpoint")
	}
	if st := c.Status(); st.Hosts[0].CxConnectFail != 3 || st.CxActive != 0 {
		t.Errorf("cx_connect_fail %d cx_active %d; want 3, 0", st.Hosts[0].CxConnectFail, st.CxActive)
	}
}

// echo starts a TCP echo server.
func echo(t *testing.T) string {
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
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestDialTCPOverflow(t *testing.T) {
	addr := echo(t)
	m, _, _ := newTestManager(t)
	p := snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{TCP: &config.TCPSettings{MaxConnections: 1}}}
	m.Update(snap(t, config.TCP, p, addr))
	c := m.Cluster(clusterName(""))
	conn, h, err := c.DialTCP(context.Background(), AttemptOptions{})
	if err != nil || h.Addr != addr {
		t.Fatalf("DialTCP: %v %v", h, err)
	}
	uc := conn.(*Conn)
	if _, ok := uc.Conn.(*net.TCPConn); !ok {
		t.Errorf("raw conn is %T; want *net.TCPConn for splice", uc.Conn)
	}
	if _, _, err := c.DialTCP(context.Background(), AttemptOptions{}); !errors.Is(err, ErrOverflow) {
		t.Fatalf("second DialTCP: %v; want ErrOverflow", err)
	}
	io.WriteString(conn, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q %v", buf, err)
	}
	conn.Close()
	conn.Close() // releases once
	conn, _, err = c.DialTCP(context.Background(), AttemptOptions{})
	if err != nil {
		t.Fatalf("DialTCP after Close: %v", err)
	}
	conn.Close()
	if st := c.Status(); st.CxActive != 0 || st.CxOverflow != 1 {
		t.Errorf("cx_active %d cx_overflow %d; want 0, 1", st.CxActive, st.CxOverflow)
	}
}

func TestPassthroughOriginalDestination(t *testing.T) {
	addr, _, _ := backend(t, status(204))
	m, _, _ := newTestManager(t)
	pt := m.Passthrough()
	if _, _, err := get(context.Background(), pt, AttemptOptions{}); !errors.Is(err, ErrNoHealthyUpstream) {
		t.Errorf("no original destination: %v; want ErrNoHealthyUpstream", err)
	}
	code, h, err := get(context.Background(), pt, AttemptOptions{Original: netip.MustParseAddrPort(addr)})
	if err != nil || code != 204 || h.Addr != addr {
		t.Fatalf("passthrough: %d %v %v", code, h, err)
	}
	st := pt.Status()
	if st.Name != PassthroughName || len(st.Hosts) != 1 || st.Hosts[0].CxActive != 1 {
		t.Errorf("status %+v; want one host with its idle connection", st)
	}
	if st.Limits.MaxConnections != Unlimited {
		t.Errorf("passthrough max_connections %d; want %d", st.Limits.MaxConnections, Unlimited)
	}
}

func TestDNSResolution(t *testing.T) {
	addr, _, _ := backend(t, status(200))
	_, port, _ := net.SplitHostPort(addr)
	if _, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil {
		t.Skipf("no resolver for localhost: %v", err)
	}
	s := snap(t, config.HTTP, snapshot.Policy{}, addr)
	sc := s.Clusters[clusterName("")]
	sc.Service.Resolution = "DNS"
	sc.Endpoints = []snapshot.Endpoint{{Address: "localhost", Ports: map[string]uint32{"http": sc.Endpoints[0].Ports["http"]}}}
	m, _, _ := newTestManager(t)
	m.Update(s)
	c := m.Cluster(clusterName(""))
	<-c.ready // picks wait for the first resolution too
	found := false
	for _, h := range c.Status().Hosts {
		found = found || h.Address == "127.0.0.1:"+port
	}
	if !found {
		t.Errorf("hosts %+v; want 127.0.0.1:%s resolved from localhost", c.Status().Hosts, port)
	}
	if r := NewResolver("127.0.0.1:53"); !r.PreferGo || r.Dial == nil {
		t.Error("NewResolver does not use Go's resolver with a custom dial")
	}
}

func TestTryRetry(t *testing.T) {
	m, _, _ := newTestManager(t)
	p := snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{HTTP: &config.HTTPSettings{MaxRetries: 1}}}
	m.Update(snap(t, config.HTTP, p, "127.0.0.1:1"))
	c := m.Cluster(clusterName(""))
	release, ok := c.TryRetry()
	if !ok {
		t.Fatal("first retry refused")
	}
	if _, ok := c.TryRetry(); ok {
		t.Error("second concurrent retry allowed with maxRetries 1")
	}
	release()
	release() // idempotent
	if r, ok := c.TryRetry(); !ok {
		t.Error("retry refused after release")
	} else {
		r()
	}
	if st := c.Status(); st.RetryOverflow != 1 || st.RetriesActive != 0 {
		t.Errorf("retry overflow %d active %d; want 1, 0", st.RetryOverflow, st.RetriesActive)
	}
}

func TestZeroManager(t *testing.T) {
	addr, _, _ := backend(t, status(200))
	var m Manager
	defer m.Close()
	if m.Cluster("x") != nil {
		t.Error("empty manager has a cluster")
	}
	m.Update(snap(t, config.HTTP, snapshot.Policy{}, addr))
	if code, _, err := get(context.Background(), m.Cluster(clusterName("")), AttemptOptions{}); err != nil || code != 200 {
		t.Fatalf("zero Manager: %d %v", code, err)
	}
}

// tlsBackend starts an HTTPS server and writes its certificate to a file.
func tlsBackend(t *testing.T) (addr, caFile string) {
	t.Helper()
	srv := httptest.NewTLSServer(status(200))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.Listener.Addr().String(), caFile
}

func TestTLSOrigination(t *testing.T) {
	addr, ca := tlsBackend(t)
	tests := []struct {
		name, host string
		tls        config.ClientTLSSettings
		ok         bool
	}{
		{"auto sni and san", "example.com", config.ClientTLSSettings{Mode: "SIMPLE", CACertificates: ca}, true},
		{"auto san mismatch", testHost, config.ClientTLSSettings{Mode: "SIMPLE", CACertificates: ca}, false},
		{"explicit sni", testHost, config.ClientTLSSettings{Mode: "SIMPLE", CACertificates: ca, SNI: "example.com"}, true},
		{"san match", testHost, config.ClientTLSSettings{Mode: "SIMPLE", CACertificates: ca, SubjectAltNames: []string{"example.com"}}, true},
		{"san mismatch", testHost, config.ClientTLSSettings{Mode: "SIMPLE", CACertificates: ca, SubjectAltNames: []string{"other.test"}}, false},
		{"system roots", "example.com", config.ClientTLSSettings{Mode: "SIMPLE"}, false},
		{"mutual without cert", "example.com", config.ClientTLSSettings{Mode: "MUTUAL", CACertificates: ca}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := newTestManager(t)
			m.Update(snap(t, config.HTTP, snapshot.Policy{TLS: &tt.tls}, addr))
			req, _ := http.NewRequest("GET", "http://"+tt.host+"/", nil)
			resp, _, err := m.Cluster(clusterName("")).RoundTrip(context.Background(), req, AttemptOptions{})
			if err == nil {
				resp.Body.Close()
			}
			var ce *ConnectError
			if tt.ok && err != nil || !tt.ok && !errors.As(err, &ce) {
				t.Errorf("err = %v; want ok %v (else *ConnectError)", err, tt.ok)
			}
		})
	}
}

func TestUnixEndpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("unix sockets: %v", err)
	}
	srv := httptest.NewUnstartedServer(status(200))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	s := snap(t, config.HTTP, snapshot.Policy{}, "127.0.0.1:1")
	sc := s.Clusters[clusterName("")]
	sc.Endpoints = []snapshot.Endpoint{{Address: "unix://" + path}}
	m, _, _ := newTestManager(t)
	m.Update(s)
	code, h, err := get(context.Background(), m.Cluster(clusterName("")), AttemptOptions{})
	if err != nil || code != 200 || h.Addr != "unix://"+path {
		t.Fatalf("unix endpoint: %d %v %v", code, h, err)
	}
}
