package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// externalNames are the external hosts the egress tests use; the test
// DNS server answers 127.0.0.1 for each.
var externalNames = []string{"httpbin.external.test", "secure.external.test", "mutual.external.test",
	"badca.external.test", "wrongsan.external.test", "echo.external.test", "tls-pt.external.test"}

func startExternalDNS(t *testing.T) *testDNS {
	t.Helper()
	names := map[string][]string{}
	for _, n := range externalNames {
		names[n] = []string{"127.0.0.1"}
	}
	return startTestDNS(t, names)
}

// proxyClient sends requests through the explicit proxy at addr, as an
// app with HTTP_PROXY does.
func proxyClient(addr string) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr}), DisableKeepAlives: true}}
}

// TestEgress runs a sidecar with testdata/gateway/egress.yaml: DNS
// ServiceEntries resolved through --dns-server, a 3s VirtualService
// timeout, REGISTRY_ONLY, and TLS origination from DestinationRules.
func TestEgress(t *testing.T) {
	backend := httptest.NewServer(httpbin.New())
	t.Cleanup(backend.Close)
	ca := newTestCA(t, "external root")
	tlsBackend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := "anonymous"
		if len(r.TLS.PeerCertificates) > 0 {
			who = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "tls to %s from %s", r.TLS.ServerName, who)
	}))
	tlsBackend.TLS = &tls.Config{Certificates: []tls.Certificate{ca.tlsCert(t, false, "secure.external.test",
		"mutual.external.test", "badca.external.test", "wrongsan.external.test", "tls-pt.external.test")},
		ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: ca.pool()}
	tlsBackend.StartTLS()
	t.Cleanup(tlsBackend.Close)
	files := t.TempDir()
	ccert, ckey := ca.issue(t, true, "sleep.default")
	data := map[string]any{"Backend": portOf(t, backend.URL), "TLSBackend": portOf(t, tlsBackend.URL),
		"CA": writeFile(t, files, "ca.pem", ca.pem), "OtherCA": writeFile(t, files, "other-ca.pem", newTestCA(t, "other").pem),
		"ClientCert": writeFile(t, files, "client.pem", ccert), "ClientKey": writeFile(t, files, "client-key.pem", ckey)}
	dns := startExternalDNS(t)
	r := startRemora(t, renderConfig(t, "gateway/egress.yaml", data), "sidecar", nil, dns.Addr())
	c := proxyClient(r.addr(t, "outbound"))
	tests := []struct {
		name, url string
		want      int
		body      string // prefix
	}{
		{"DNS service entry", "http://httpbin.external.test/status/200", 200, ""},
		{"STATIC service entry", "http://static.external.test/status/201", 201, ""},
		{"timeout 3s, backend sleeps 5s", "http://httpbin.external.test/delay/5", 504, "upstream request timeout"},
		{"REGISTRY_ONLY unregistered host", "http://unregistered.external.test/status/200", 502, ""},
		{"TLS origination SIMPLE", "http://secure.external.test/", 200, "tls to secure.external.test from anonymous"},
		{"TLS origination MUTUAL", "http://mutual.external.test/", 200, "tls to mutual.external.test from sleep.default"},
		{"TLS origination, CA does not verify", "http://badca.external.test/", 503, "upstream connect error or disconnect/reset before headers."},
		{"TLS origination, subjectAltNames do not match", "http://wrongsan.external.test/", 503, "upstream connect error or disconnect/reset before headers."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := get(t, c, tt.url, "")
			if code != tt.want || !strings.HasPrefix(body, tt.body) || tt.body == "" && tt.want == 502 && body != "" {
				t.Errorf("GET %s = %d %q; want %d %q", tt.url, code, body, tt.want, tt.body)
			}
		})
	}
	t.Cleanup(func() {
		// After the parallel cases: the failed originations are counted
		// with flag UF (and URX once the default retries ran out), as Envoy
		// reports a TLS handshake failure.
		// A request is recorded once its answer is written: scrape until
		// both series are there (bounded), then check them.
		hosts := []string{"badca.external.test", "wrongsan.external.test"}
		missing := func(stats string) []string {
			var out []string
			for _, host := range hosts {
				if !hasSample(stats, "istio_requests_total", `destination_service="`+host+`"`, `response_code="503"`, `response_flags="UF`) {
					out = append(out, host)
				}
			}
			return out
		}
		var stats string
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, stats = get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+r.addr(t, "stats")+"/stats/prometheus", "")
			if len(missing(stats)) == 0 || time.Now().After(deadline) {
				break
			}
		}
		for _, host := range missing(stats) {
			t.Errorf("no istio_requests_total sample for %s with 503 UF in:\n%s", host, stats)
		}
	})
	t.Run("HTTPS tunnelled to a TLS port", func(t *testing.T) {
		t.Parallel()
		tc := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: r.addr(t, "outbound")}), TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
		code, body := get(t, tc, "https://tls-pt.external.test/", "")
		if want := "tls to tls-pt.external.test from anonymous"; code != 200 || body != want {
			t.Errorf("GET https://tls-pt.external.test/ = %d %q; want 200 %q", code, body, want)
		}
	})
	t.Run("resolved through --dns-server", func(t *testing.T) {
		t.Parallel()
		// The DNS cluster resolves in the background after the config
		// loads: wait for its first query (bounded) instead of racing it.
		deadline := time.Now().Add(5 * time.Second)
		for dns.Queries("httpbin.external.test") == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if dns.Queries("httpbin.external.test") == 0 {
			t.Error("the test DNS server got no query for httpbin.external.test")
		}
	})
}

// TestEgressGateway is the mesh → egress gateway → external pattern with
// two remora processes on one config directory, plus a TCP server on
// the gateway forwarding to an external TCP host.
func TestEgressGateway(t *testing.T) {
	backend := httptest.NewServer(httpbin.New())
	t.Cleanup(backend.Close)
	echo := startEcho(t)
	dns := startExternalDNS(t)
	data := map[string]int{"Backend": portOf(t, backend.URL), "Echo": echo, "Gateway": freePort(t), "TCP": freePort(t)}
	dir := renderConfig(t, "gateway/egress-gateway.yaml", data)
	gw := startRemora(t, dir, "gateway", labelsFlag{"istio": "egressgateway"}, dns.Addr())
	sidecar := startRemora(t, dir, "sidecar", labelsFlag{"app": "sleep"}, "")
	c := proxyClient(sidecar.addr(t, "outbound"))
	// The sidecar has no DNS server that knows the external name: only
	// the gateway can reach it.
	if code, body := get(t, c, "http://httpbin.external.test/status/200", ""); code != 200 {
		t.Errorf("through the egress gateway: %d %q; want 200", code, body)
	}
	code, body := get(t, c, "http://httpbin.external.test/headers", "")
	if code != 200 || !strings.Contains(body, "X-Forwarded-For") {
		t.Errorf("GET /headers through the egress gateway = %d %q; want 200 with X-Forwarded-For", code, body)
	}
	conn, err := net.DialTimeout("tcp", gw.addr(t, fmt.Sprintf("gateway:%d", data["TCP"])), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "hello\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Errorf("TCP through the gateway echoed %q, %v; want %q", line, err, "hello\n")
	}
}

// startEcho runs a line echo server on loopback and returns its port.
func startEcho(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}

// hasSample reports whether a Prometheus text exposition has a sample of
// metric carrying every one of labels.
func hasSample(text, metric string, labels ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			return true
		}
	}
	return false
}
