package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/upstream"
)

// selfSigned writes a self-signed certificate for names and its key to
// dir and returns the paths.
func selfSigned(t *testing.T, dir, prefix string, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, prefix+"cert.pem"), filepath.Join(dir, prefix+"key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func leafNames(t *testing.T, s *CertSet) []string {
	t.Helper()
	c, err := x509.ParseCertificate(s.Cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c.DNSNames
}

// TestCertReloader: a replaced file is loaded by the next Current; a
// broken replacement keeps the last good set and is reported once.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "", "one.example.com")
	r, err := NewCertReloader(CertFiles{Cert: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	r.OnError = func(err error) { errs = append(errs, err) }
	first := r.Current()
	if got := leafNames(t, first); !slices.Equal(got, []string{"one.example.com"}) {
		t.Fatalf("names = %v; want [one.example.com]", got)
	}
	if r.Current() != first {
		t.Error("Current reloaded unchanged files")
	}
	selfSigned(t, dir, "", "two.example.com") // rewrites both files
	if got := leafNames(t, r.Current()); !slices.Equal(got, []string{"two.example.com"}) {
		t.Errorf("after replacing the files: names = %v; want [two.example.com]", got)
	}
	good := r.Current()
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r.Current() != good {
			t.Fatal("a broken certificate file replaced the last good set")
		}
	}
	if len(errs) != 1 {
		t.Errorf("OnError called %d times for one broken write; want 1 (%v)", len(errs), errs)
	}
	if _, err := NewCertReloader(CertFiles{Cert: cert, Key: key}); err == nil {
		t.Error("NewCertReloader on a broken file succeeded")
	}
}

func TestTLSVersion(t *testing.T) {
	tests := []struct {
		in      config.TLSVersion
		want    uint16
		wantErr bool
	}{
		{"", tls.VersionTLS12, false},
		{"TLS_AUTO", tls.VersionTLS12, false},
		{"TLSV1_0", tls.VersionTLS10, false},
		{"TLSV1_3", tls.VersionTLS13, false},
		{"TLSV9", 0, true},
	}
	for _, tt := range tests {
		got, err := tlsVersion(tt.in, tls.VersionTLS12)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("tlsVersion(%q) = %x, %v; want %x, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCipherSuites(t *testing.T) {
	var warnings []string
	got := cipherSuites([]string{"ECDHE-RSA-AES128-GCM-SHA256", "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]",
		"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "NOT-A-CIPHER", "ECDHE-RSA-AES128-GCM-SHA256"}, func(s string) { warnings = append(warnings, s) })
	want := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}
	if !slices.Equal(got, want) {
		t.Errorf("cipherSuites = %x; want %x", got, want)
	}
	if len(warnings) != 2 {
		t.Errorf("warnings = %q; want one unknown and one duplicate", warnings)
	}
}

func TestBySNI(t *testing.T) {
	exact := &gwServer{name: "exact", hosts: []string{"a.example.com"}}
	wild := &gwServer{name: "wild", hosts: []string{"*.example.com"}}
	deeper := &gwServer{name: "deeper", hosts: []string{"*.b.example.com"}}
	all := &gwServer{name: "all", hosts: []string{"*"}}
	tests := []struct {
		name, sni string
		servers   []*gwServer
		want      *gwServer
	}{
		{"exact beats wildcard", "a.example.com", []*gwServer{wild, exact}, exact},
		{"longest wildcard", "x.b.example.com", []*gwServer{wild, deeper}, deeper},
		{"wildcard beats catch-all", "c.example.com", []*gwServer{all, wild}, wild},
		{"catch-all", "other.test", []*gwServer{exact, all}, all},
		{"no SNI: catch-all only", "", []*gwServer{exact, all}, all},
		{"no SNI, no catch-all", "", []*gwServer{exact, wild}, nil},
		{"no match", "other.test", []*gwServer{exact, wild}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (&gwPortSet{servers: tt.servers}).bySNI(tt.sni); got != tt.want {
				t.Errorf("bySNI(%q) = %v; want %v", tt.sni, got, tt.want)
			}
		})
	}
}

// gatewayHarness runs a Gateway on snapshots built from YAML.
type gatewayHarness struct {
	g     *Gateway
	store *snapshot.Store
	up    *upstream.Manager
}

func newGatewayHarness(t *testing.T) *gatewayHarness {
	t.Helper()
	h := &gatewayHarness{store: &snapshot.Store{}, up: upstream.NewManager(upstream.Options{})}
	t.Cleanup(h.up.Close)
	h.g = &Gateway{Store: h.store, Upstream: h.up, HTTP: &HTTPServer{Store: h.store, Upstream: h.up, Gateway: true}, BindAddress: "127.0.0.1"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = h.g.Shutdown(ctx)
	})
	return h
}

// apply builds a gateway snapshot from yaml and hands it to the Gateway.
func (h *gatewayHarness) apply(t *testing.T, yaml string) error {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	set, diags, err := config.Load(dir, config.Options{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("config: %v %v", err, diags.Errors())
	}
	snap, err := snapshot.Build(set, diags, snapshot.Options{Gateway: true, Labels: map[string]string{"istio": "ingressgateway"}})
	if err != nil {
		t.Fatal(err)
	}
	h.up.Update(snap)
	h.store.Swap(snap)
	return h.g.Update(snap)
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const gwTemplate = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  selector: {istio: ingressgateway}
  servers:
%s`

// TestGatewayReconcile: a reload keeps a port's listener (same socket),
// binds new ports and closes removed ones; a port that is taken is an
// error that the next Update retries.
func TestGatewayReconcile(t *testing.T) {
	h := newGatewayHarness(t)
	p1, p2 := freeLoopbackPort(t), freeLoopbackPort(t)
	srv := func(p int) string {
		return fmt.Sprintf("  - port: {number: %d, name: http-%d, protocol: HTTP}\n    hosts: ['*']\n", p, p)
	}
	if err := h.apply(t, fmt.Sprintf(gwTemplate, srv(p1))); err != nil {
		t.Fatal(err)
	}
	first := h.g.Addrs()[fmt.Sprintf("gateway:%d", p1)]
	if err := h.apply(t, fmt.Sprintf(gwTemplate, srv(p1)+srv(p2))); err != nil {
		t.Fatal(err)
	}
	addrs := h.g.Addrs()
	if addrs[fmt.Sprintf("gateway:%d", p1)] != first || addrs[fmt.Sprintf("gateway:%d", p2)] == nil {
		t.Fatalf("after adding a port: %v; want port %d kept and %d added", addrs, p1, p2)
	}
	if err := h.apply(t, fmt.Sprintf(gwTemplate, srv(p2))); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.g.Addrs()[fmt.Sprintf("gateway:%d", p1)]; ok {
		t.Errorf("port %d still listed after its server was removed", p1)
	}
	// The removed port closes (draining in the background): bounded wait.
	closed := false
	for range 100 {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p1), time.Second)
		if err != nil {
			closed = true
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	if !closed {
		t.Errorf("port %d still accepts after removal", p1)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bp := busy.Addr().(*net.TCPAddr).Port
	if err := h.apply(t, fmt.Sprintf(gwTemplate, srv(p2)+srv(bp))); err == nil {
		t.Errorf("Update with port %d taken = nil; want a bind error", bp)
	}
	busy.Close()
	if err := h.apply(t, fmt.Sprintf(gwTemplate, srv(p2)+srv(bp))); err != nil {
		t.Errorf("Update after the port was freed: %v", err)
	}
}

// TestGatewayTLSTerminatedTCP: a TLS server with mode SIMPLE terminates
// and forwards the plaintext by tcp rules.
func TestGatewayTLSTerminatedTCP(t *testing.T) {
	echo := startEcho(t, nil)
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "", "db.example.com")
	port := freeLoopbackPort(t)
	yaml := fmt.Sprintf(gwTemplate, fmt.Sprintf(`  - port: {number: %d, name: tls, protocol: TLS}
    hosts: [db.example.com]
    tls: {mode: SIMPLE, serverCertificate: %s, privateKey: %s}
`, port, cert, key)) + fmt.Sprintf(`---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: [db.example.com]
  gateways: [gw]
  tcp:
  - route: [{destination: {host: db.example.com, port: {number: 5432}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp, protocol: TCP, targetPort: %d}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`, echo)
	h := newGatewayHarness(t)
	if err := h.apply(t, yaml); err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(cert)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: roots, ServerName: "db.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Errorf("echo over terminated TLS = %q, %v; want %q", line, err, "ping\n")
	}
	if _, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: roots, ServerName: "db.example.com",
		MaxVersion: tls.VersionTLS11}); err == nil {
		t.Errorf("TLS 1.1 handshake accepted; want the default minimum TLS 1.2 to refuse it")
	}
}

// startEcho serves a line echo on loopback, over TLS when cfg is set,
// and returns its port.
func startEcho(t *testing.T, cfg *tls.Config) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestGatewayTCPOriginatesTLS: a TCP server whose cluster has a
// DestinationRule tls SIMPLE opens TLS upstream; the bytes are
// encrypted end to end, never spliced past the TLS layer.
func TestGatewayTCPOriginatesTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "", "db-tls.example.com")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	echo := startEcho(t, &tls.Config{Certificates: []tls.Certificate{pair}})
	port := freeLoopbackPort(t)
	yaml := fmt.Sprintf(gwTemplate, fmt.Sprintf("  - port: {number: %d, name: tcp, protocol: TCP}\n    hosts: ['*']\n", port)) +
		fmt.Sprintf(`---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: ['*']
  gateways: [gw]
  tcp:
  - route: [{destination: {host: db-tls.example.com, port: {number: 5432}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db}
spec:
  hosts: [db-tls.example.com]
  ports: [{number: 5432, name: tcp, protocol: TCP, targetPort: %d}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db}
spec:
  host: db-tls.example.com
  trafficPolicy:
    tls: {mode: SIMPLE, caCertificates: %s, sni: db-tls.example.com}
`, echo, cert)
	h := newGatewayHarness(t)
	if err := h.apply(t, yaml); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Errorf("echo through TLS origination = %q, %v; want %q", line, err, "ping\n")
	}
}

// TestServerAllows: a server host's "ns/" part limits which
// VirtualServices' namespaces may serve it ("." is the Gateway's own).
func TestServerAllows(t *testing.T) {
	h := newGatewayHarness(t)
	s, err := h.g.server("istio-system/gw", &config.Server{Port: &config.Port{Number: 80, Protocol: "HTTP"},
		Hosts: []string{"prod/a.example.com", "./b.example.com", "*.example.com"}}, h.g.log())
	if err != nil {
		t.Fatal(err)
	}
	strict, err := h.g.server("istio-system/gw", &config.Server{Port: &config.Port{Number: 80, Protocol: "HTTP"},
		Hosts: []string{"prod/a.example.com", "./b.example.com"}}, h.g.log())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		srv  *gwServer
		host string
		vss  []string
		want bool
	}{
		{"namespace allowed", strict, "a.example.com", []string{"prod/a"}, true},
		{"namespace not allowed", strict, "a.example.com", []string{"default/a"}, false},
		{"dot is the gateway's namespace", strict, "b.example.com", []string{"istio-system/b"}, true},
		{"dot excludes others", strict, "b.example.com", []string{"default/b"}, false},
		{"one of several may bind", strict, "a.example.com", []string{"default/a", "prod/a2"}, true},
		{"any namespace via a wildcard host", s, "a.example.com", []string{"default/a"}, true},
		{"host not served", strict, "c.example.com", []string{"prod/c"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.srv.allows(tt.host, tt.vss); got != tt.want {
				t.Errorf("allows(%q, %v) = %v; want %v", tt.host, tt.vss, got, tt.want)
			}
		})
	}
}
