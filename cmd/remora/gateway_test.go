package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// ingress is a gateway remora serving testdata/gateway/ingress.yaml in
// front of a real httpbin.
type ingress struct {
	r                        *testRemora
	ca                       *testCA
	http, https, mtls, redir string // listener addresses
	certFile, keyFile        string
}

func startIngress(t *testing.T) *ingress {
	t.Helper()
	backend := httptest.NewServer(httpbin.New())
	t.Cleanup(backend.Close)
	ca := newTestCA(t, "test root")
	files := t.TempDir()
	cert, key := ca.issue(t, false, "httpbin.example.com")
	ocert, okey := ca.issue(t, false, "other.example.com")
	in := &ingress{ca: ca, certFile: writeFile(t, files, "cert.pem", cert), keyFile: writeFile(t, files, "key.pem", key)}
	ports := map[string]any{"HTTP": freePort(t), "HTTPS": freePort(t), "MTLS": freePort(t), "Redirect": freePort(t),
		"Backend": portOf(t, backend.URL), "Cert": in.certFile, "Key": in.keyFile, "CA": writeFile(t, files, "ca.pem", ca.pem),
		"OtherCert": writeFile(t, files, "other-cert.pem", ocert), "OtherKey": writeFile(t, files, "other-key.pem", okey)}
	dir := renderConfig(t, "gateway/ingress.yaml", ports)
	in.r = startRemora(t, dir, "gateway", labelsFlag{"istio": "ingressgateway"}, "")
	in.http = in.r.addr(t, fmt.Sprintf("gateway:%d", ports["HTTP"]))
	in.https = in.r.addr(t, fmt.Sprintf("gateway:%d", ports["HTTPS"]))
	in.mtls = in.r.addr(t, fmt.Sprintf("gateway:%d", ports["MTLS"]))
	in.redir = in.r.addr(t, fmt.Sprintf("gateway:%d", ports["Redirect"]))
	return in
}

// client returns an HTTPS client that trusts the test CA and sends SNI
// sni, with the given client certificates.
func (in *ingress) client(sni string, h2 bool, certs ...tls.Certificate) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: in.ca.pool(), ServerName: sni, Certificates: certs},
		ForceAttemptHTTP2: h2, DisableKeepAlives: true}
	if !h2 {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestIngressHTTP is the Istio ingress example over plain HTTP:
// /status/200 routes, /headers has no route (404), and a host the
// gateway does not serve is 404 too, never passed through.
func TestIngressHTTP(t *testing.T) {
	in := startIngress(t)
	c := &http.Client{Timeout: 10 * time.Second}
	tests := []struct {
		name, host, path string
		want             int
	}{
		{"routed", "httpbin.example.com", "/status/200", 200},
		{"routed status", "httpbin.example.com", "/status/418", 418},
		{"no route", "httpbin.example.com", "/headers", 404},
		{"host with port", "httpbin.example.com:80", "/status/200", 200},
		{"unknown host", "unknown.example.com", "/status/200", 404},
		{"host outside the server's hosts", "other.example.com", "/status/200", 404},
		{"server host for VirtualServices of another namespace", "prod-only.example.com", "/status/200", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := get(t, c, "http://"+in.http+tt.path, tt.host); got != tt.want {
				t.Errorf("GET %s Host %s = %d; want %d", tt.path, tt.host, got, tt.want)
			}
		})
	}
}

// TestIngressHTTPSRedirect: an httpsRedirect server answers 301 to the
// same host and path over https.
func TestIngressHTTPSRedirect(t *testing.T) {
	in := startIngress(t)
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.redir+"/status/200?x=1", nil)
	req.Host = "httpbin.example.com"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusMovedPermanently; got != want {
		t.Errorf("status = %d; want %d", got, want)
	}
	if got, want := resp.Header.Get("Location"), "https://httpbin.example.com/status/200?x=1"; got != want {
		t.Errorf("Location = %q; want %q", got, want)
	}
}

// TestIngressHTTPSSimple terminates TLS with the test certificate,
// chosen by SNI among two servers on one port; ALPN h2 serves HTTP/2.
func TestIngressHTTPSSimple(t *testing.T) {
	in := startIngress(t)
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			c := in.client("httpbin.example.com", h2)
			req, _ := http.NewRequest(http.MethodGet, "https://"+in.https+"/status/200", nil)
			req.Host = "httpbin.example.com"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status = %d; want 200", resp.StatusCode)
			}
			if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
				t.Errorf("protocol %s; want HTTP/%d", resp.Proto, want)
			}
			if got := resp.TLS.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != "httpbin.example.com" {
				t.Errorf("certificate for %v; want httpbin.example.com", got)
			}
			if got, _ := get(t, c, "https://"+in.https+"/headers", "httpbin.example.com"); got != 404 {
				t.Errorf("GET /headers = %d; want 404", got)
			}
		})
	}
	t.Run("second server's certificate by SNI", func(t *testing.T) {
		conn, err := tls.Dial("tcp", in.https, &tls.Config{RootCAs: in.ca.pool(), ServerName: "other.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if got := conn.ConnectionState().PeerCertificates[0].DNSNames; got[0] != "other.example.com" {
			t.Errorf("certificate for %v; want other.example.com", got)
		}
	})
	t.Run("no server for the SNI", func(t *testing.T) {
		conn, err := tls.Dial("tcp", in.https, &tls.Config{RootCAs: in.ca.pool(), ServerName: "nobody.example.com"})
		if err == nil {
			conn.Close()
			t.Fatal("handshake with an unserved SNI succeeded; want the connection closed")
		}
	})
}

// TestIngressMutual: MUTUAL refuses a client without a certificate and
// accepts one signed by the CA; one signed by another CA is refused.
func TestIngressMutual(t *testing.T) {
	in := startIngress(t)
	url := "https://" + in.mtls + "/status/200"
	do := func(c *http.Client) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = "httpbin.example.com"
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := do(in.client("httpbin.example.com", false)); err == nil {
		t.Errorf("without a client certificate: status %d; want the handshake refused", code)
	}
	other := newTestCA(t, "other root")
	if code, err := do(in.client("httpbin.example.com", false, other.tlsCert(t, true, "client.example.com"))); err == nil {
		t.Errorf("with a certificate of another CA: status %d; want the handshake refused", code)
	}
	code, err := do(in.client("httpbin.example.com", false, in.ca.tlsCert(t, true, "client.example.com")))
	if err != nil || code != 200 {
		t.Errorf("with a certificate signed by the CA: %d, %v; want 200", code, err)
	}
}

// TestIngressCertReload replaces the certificate files on disk: the next
// new connection gets the new certificate, and a connection opened
// before keeps working.
func TestIngressCertReload(t *testing.T) {
	in := startIngress(t)
	dial := func() *tls.Conn {
		t.Helper()
		c, err := tls.Dial("tcp", in.https, &tls.Config{RootCAs: in.ca.pool(), ServerName: "httpbin.example.com", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := dial()
	defer old.Close()
	oldSerial := old.ConnectionState().PeerCertificates[0].SerialNumber
	cert, key := in.ca.issue(t, false, "httpbin.example.com", "www.httpbin.example.com")
	// Replace as kubelet and cert-manager do: write aside, rename over.
	for path, b := range map[string][]byte{in.certFile: cert, in.keyFile: key} {
		tmp := writeFile(t, filepath.Dir(path), "."+filepath.Base(path)+".new", b)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	nc := dial()
	defer nc.Close()
	leaf := nc.ConnectionState().PeerCertificates[0]
	if leaf.SerialNumber.Cmp(oldSerial) == 0 || len(leaf.DNSNames) != 2 {
		t.Errorf("new connection got the old certificate (serial %v, names %v); want the replaced one", leaf.SerialNumber, leaf.DNSNames)
	}
	for name, c := range map[string]*tls.Conn{"old": old, "new": nc} {
		if code := rawGet(t, c, "httpbin.example.com", "/status/200"); code != 200 {
			t.Errorf("%s connection: status %d; want 200", name, code)
		}
	}
}

// rawGet sends one HTTP/1.1 request on c and returns the status.
func rawGet(t *testing.T, c net.Conn, host, path string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestGatewayPassthrough routes two SNI names to two TLS backends
// without terminating: the client sees each backend's own certificate.
func TestGatewayPassthrough(t *testing.T) {
	ca := newTestCA(t, "backend root")
	backend := func(name string) *httptest.Server {
		return startTLSBackend(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "backend "+name)
		}), ca.tlsCert(t, false, name))
	}
	a, b := backend("a.example.com"), backend("b.example.com")
	dns := startTestDNS(t, map[string][]string{"a.example.com": {"127.0.0.1"}})
	port := freePort(t)
	dir := renderConfig(t, "gateway/passthrough.yaml", map[string]int{"Port": port, "A": portOf(t, a.URL), "B": portOf(t, b.URL)})
	r := startRemora(t, dir, "gateway", labelsFlag{"istio": "ingressgateway"}, dns.Addr())
	addr := r.addr(t, fmt.Sprintf("gateway:%d", port))
	for _, name := range []string{"a.example.com", "b.example.com"} {
		t.Run(name, func(t *testing.T) {
			var cs tls.ConnectionState
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: name,
				VerifyConnection: func(s tls.ConnectionState) error { cs = s; return nil }}}
			defer tr.CloseIdleConnections()
			code, body := get(t, &http.Client{Transport: tr, Timeout: 10 * time.Second}, "https://"+addr+"/", name)
			if code != 200 || body != "backend "+name {
				t.Errorf("GET = %d %q; want 200 %q", code, body, "backend "+name)
			}
			if got := cs.PeerCertificates[0]; !isIssuedBy(got, ca.cert) || got.DNSNames[0] != name {
				t.Errorf("certificate %v from %s; want the backend's own", got.DNSNames, got.Issuer)
			}
		})
	}
	t.Run("unrouted SNI", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool(), ServerName: "c.example.com"})
		if err == nil {
			c.Close()
			t.Error("handshake for an SNI the gateway does not serve succeeded; want closed")
		} else if !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
			t.Logf("refused as expected: %v", err)
		}
	})
}

func isIssuedBy(c, ca *x509.Certificate) bool { return c.CheckSignatureFrom(ca) == nil }

// TestIngressH2C: an HTTP gateway server accepts HTTP/2 with prior
// knowledge (h2c), as Envoy's AUTO codec does.
func TestIngressH2C(t *testing.T) {
	in := startIngress(t)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: p}}
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.http+"/status/200", nil)
	req.Host = "httpbin.example.com"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Errorf("h2c GET = %d over %s; want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
}

// TestGatewayPortTaken: a Gateway port that cannot be bound at start
// ends `remora run` with an error instead of reporting ready.
func TestGatewayPortTaken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	writeFile(t, dir, "gw.yaml", []byte(fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: %d, name: http, protocol: HTTP}
    hosts: ["*"]
`, busy.Addr().(*net.TCPAddr).Port)))
	f := &runFlags{config: dir, role: "gateway", labels: labelsFlag{"istio": "ingressgateway"}, namespace: "default",
		domain: "cluster.local", adminAddr: "127.0.0.1:0", statsAddr: "127.0.0.1:0", healthAddr: "127.0.0.1:0",
		bindAddress: "127.0.0.1", drainDuration: time.Second, exitOnZero: true, logLevel: "error", accessLog: "off"}
	p := newProcess(f, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel+1)))
	done := make(chan error, 1)
	go func() { done <- p.run(t.Context()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("run = %v; want the bind error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("remora run kept running with a Gateway port it could not bind")
	}
}
