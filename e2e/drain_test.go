package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"

	"github.com/remora-mesh/remora/internal/testns"
)

const drainMesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  ports: [{number: 8000, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: %d}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - headers:
      response:
        set: {x-config-generation: "%d"}
    route:
    - destination: {host: httpbin}
`

// TestDrainUnderLoad sends 200 requests per second for 10s through a real
// remora process while its config is rewritten every second, then sends
// SIGTERM with slow requests in flight: every response must be 200, and
// the process must exit 0 within --drain-duration (5s) plus 1s.
func TestDrainUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips the 10s load")
	}
	build(t)
	backend := httptest.NewServer(httpbin.New())
	defer backend.Close()
	dir := t.TempDir()
	bport := backend.Listener.Addr().(*net.TCPAddr).Port
	write := func(gen int) {
		tmp := filepath.Join(dir, ".mesh.tmp")
		if err := os.WriteFile(tmp, []byte(fmt.Sprintf(drainMesh, bport, gen)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "mesh.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	ports := testns.FreePorts(t, 5)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	p := start(t, nil, remoraBin, "run", "--config", dir, "--bind-address", "127.0.0.1",
		"--outbound-port", strconv.Itoa(ports[0]), "--inbound-port", strconv.Itoa(ports[1]),
		"--admin-addr", addr(2), "--stats-addr", addr(3), "--health-addr", addr(4),
		"--drain-duration", "5s", "--access-log", "off")
	if !waitFor(10*time.Second, func() bool { return get("http://"+addr(4)+"/healthz/ready") == 200 }) {
		t.Fatalf("remora not ready:\n%s", p.Output())
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr(0)}), MaxIdleConnsPerHost: 16}}
	var sent, ok atomic.Int64
	var bad sync.Map
	do := func(path string) {
		sent.Add(1)
		resp, err := client.Get("http://httpbin:8000" + path)
		if err != nil {
			bad.Store(err.Error(), true)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			ok.Add(1)
		} else {
			bad.Store(resp.Status, true)
		}
	}
	// 200 req/s for 10s, paced by schedule (exactly 2000 requests, even
	// when the machine is too busy to keep the pace), with a reload every
	// second.
	var wg sync.WaitGroup
	const total, every = 2000, 5 * time.Millisecond
	begin := time.Now()
	gen := 0
	for i := range total {
		if d := time.Until(begin.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		if i > 0 && i%200 == 0 {
			gen++
			write(gen)
		}
		wg.Add(1)
		go func() { defer wg.Done(); do("/get") }()
	}
	wg.Wait()
	// Slow requests in flight at SIGTERM must still complete.
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); do("/delay/1s") }()
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	code := p.wait(6 * time.Second)
	took := time.Since(start)
	wg.Wait()
	t.Logf("%d requests, %d answered 200, %d config reloads; exit %d after SIGTERM in %s", sent.Load(), ok.Load(), gen, code, took.Round(time.Millisecond))
	bad.Range(func(k, _ any) bool { t.Errorf("a request failed: %v", k); return true })
	if ok.Load() != sent.Load() || sent.Load() != total+5 {
		t.Errorf("%d of %d requests answered 200; want all %d", ok.Load(), sent.Load(), total+5)
	}
	if code != 0 {
		t.Errorf("exit code %d (or still running) after SIGTERM; want 0 within 6s\n%s", code, p.Output())
	}
}

func get(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
