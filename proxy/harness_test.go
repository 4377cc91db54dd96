package proxy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/upstream"
)

// backend is a real HTTP server on 127.0.0.1 that answers with its name
// and counts what it saw.
type backend struct {
	name  string
	srv   *httptest.Server
	hits  atomic.Int64
	mu    sync.Mutex
	hosts []string
}

func newBackend(t testing.TB, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.mu.Lock()
		if len(b.hosts) < 100 {
			b.hosts = append(b.hosts, r.Host)
		}
		b.mu.Unlock()
		w.Header().Set("X-Backend", name)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) port() int { return b.srv.Listener.Addr().(*net.TCPAddr).Port }

// serviceEntry returns a ServiceEntry for host:port whose endpoints are
// the backends, each labelled version=<backend name>.
func serviceEntry(host string, port int, protocol string, bs ...*backend) string {
	var eps strings.Builder
	for _, b := range bs {
		fmt.Fprintf(&eps, "  - address: 127.0.0.1\n    ports: {http: %d}\n    labels: {version: %s}\n", b.port(), b.name)
	}
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: %s
spec:
  hosts: [%s]
  ports:
  - {number: %d, name: http, protocol: %s}
  resolution: STATIC
  endpoints:
%s`, strings.ReplaceAll(host, ".", "-"), host, port, protocol, eps.String())
}

// seeded is a deterministic random source safe for concurrent use.
func seeded(seed uint64) func() uint64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed+1))
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Uint64()
	}
}

// testProxy is an HTTPServer on a loopback listener whose connections are
// served as if captured for Port (no iptables needed).
type testProxy struct {
	mu    sync.Mutex // orders configure before the connections after it
	h     *HTTPServer
	store *snapshot.Store
	up    *upstream.Manager
	addr  string
	port  uint32
	dir   string
}

// startProxy loads the given config files (testdata names or inline YAML
// documents) and serves captured traffic for port.
func startProxy(t testing.TB, port uint32, docs ...string) *testProxy {
	t.Helper()
	dir := t.TempDir()
	for i, d := range docs {
		if !strings.Contains(d, "\n") {
			b, err := os.ReadFile(filepath.Join("testdata", d))
			if err != nil {
				t.Fatal(err)
			}
			d = string(b)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.yaml", i)), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := &testProxy{store: &snapshot.Store{}, port: port, dir: dir}
	p.up = upstream.NewManager(upstream.Options{})
	t.Cleanup(p.up.Close)
	p.reload(t)
	p.h = &HTTPServer{Store: p.store, Upstream: p.up, Rand: seeded(1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			remote, _ := netip.ParseAddrPort(c.RemoteAddr().String())
			orig := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(port)) // loopback: a passthrough dial is refused at once, never leaves the machine
			p.mu.Lock()
			//lint:ignore SA2001 an empty critical section: the ordering after configure is the point
			p.mu.Unlock()
			go p.h.ServeConn(c, &ConnInfo{Snapshot: p.store.Load(), Original: orig, Port: port, Remote: remote})
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

// configure changes the server's fields before the next connections
// (not those already open).
func (p *testProxy) configure(f func(h *HTTPServer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p.h)
}

// reload loads the proxy's config dir into a new snapshot.
func (p *testProxy) reload(t testing.TB) {
	t.Helper()
	set, diags, err := config.Load(p.dir, config.Options{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("config: %v %v", err, diags.Errors())
	}
	snap, err := snapshot.Build(set, diags, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.up.Update(snap)
	p.store.Swap(snap)
}

// client sends requests to the proxy as a captured app would: plain
// requests on keep-alive connections to the proxy's address.
func (p *testProxy) client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", p.addr)
			},
			MaxIdleConnsPerHost: 64,
		},
		Timeout: 30 * time.Second,
	}
}

func (p *testProxy) get(t testing.TB, c *http.Client, host, path string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+host+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}
