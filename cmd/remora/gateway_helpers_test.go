package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"text/template"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// testCA is a certificate authority made by the test (crypto/x509).
type testCA struct {
	cert   *x509.Certificate
	key    crypto.Signer
	pem    []byte
	serial int64
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1}
}

// issue signs a leaf for dnsNames (a server certificate, or a client one
// when client is set) and returns its PEM certificate and key.
func (ca *testCA) issue(t *testing.T, client bool, dnsNames ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: dnsNames[0]}, DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// tlsCert issues a leaf as a tls.Certificate.
func (ca *testCA) tlsCert(t *testing.T, client bool, dnsNames ...string) tls.Certificate {
	t.Helper()
	c, k := ca.issue(t, client, dnsNames...)
	cert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// writeFile writes b to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freePort returns a loopback TCP port that was free a moment ago (a
// Gateway server listens on its port.number exactly, so the test must
// name one).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// renderConfig executes testdata/<name> with data into a new config
// directory.
func renderConfig(t *testing.T, name string, data any) string {
	t.Helper()
	tmpl := template.Must(template.ParseFiles(filepath.Join("testdata", name)))
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "config.yaml", b.Bytes())
	return dir
}

// testRemora is a real `remora run` process in the test.
type testRemora struct {
	p     *process
	mu    sync.Mutex
	addrs map[string]string
}

// startRemora runs `remora run` on dir with the given role and labels on
// ephemeral loopback ports, and returns once it is ready.
func startRemora(t *testing.T, dir, role string, labels labelsFlag, dnsServer string) *testRemora {
	t.Helper()
	f := &runFlags{config: dir, role: role, labels: labels, namespace: "default", domain: "cluster.local",
		adminAddr: "127.0.0.1:0", statsAddr: "127.0.0.1:0", healthAddr: "127.0.0.1:0", bindAddress: "127.0.0.1",
		drainDuration: time.Second, exitOnZero: true, logLevel: "debug", accessLog: "off", dnsServer: dnsServer}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	r := &testRemora{p: newProcess(f, log), addrs: map[string]string{}}
	r.p.onListen = func(name string, addr net.Addr) {
		r.mu.Lock()
		r.addrs[name] = addr.String()
		r.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.p.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("remora run: %v", err)
		}
	})
	deadline := time.After(10 * time.Second)
	for !r.p.ready.Load() {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("remora run exited before ready: %v", err)
		case <-deadline:
			t.Fatal("remora not ready within 10s")
		case <-time.After(5 * time.Millisecond):
		}
	}
	return r
}

// addr is the bound address of the named listener.
func (r *testRemora) addr(t *testing.T, name string) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.addrs[name]
	if !ok {
		t.Fatalf("no listener %q; have %v", name, r.addrs)
	}
	return a
}

// get sends one request with the given Host and returns the status and
// body.
func get(t *testing.T, c *http.Client, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// startTLSBackend serves h over TLS with cert on loopback.
func startTLSBackend(t *testing.T, h http.Handler, cert tls.Certificate) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func portOf(t *testing.T, rawURL string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(rawURL[len("https://"):])
	if rawURL[:5] == "http:" {
		_, p, err = net.SplitHostPort(rawURL[len("http://"):])
	}
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}
