package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/remora-mesh/remora/internal/testns"
)

// privMesh is one HTTP service for the privilege and fd tests.
const privMesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web]
  ports: [{number: 8000, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: %d}}]
`

// startRemora runs `remora run` under wrap (a command prefix such as
// setpriv or prlimit) on free loopback ports with a world-readable config
// and returns the explicit proxy's address once ready.
func startRemora(t *testing.T, wrap ...string) (proxy string, p *proc) {
	t.Helper()
	build(t)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(be.Close)
	dir, err := os.MkdirTemp("", "remora-priv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	doc := fmt.Sprintf(privMesh, be.Listener.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := testns.FreePorts(t, 5)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	argv := append(wrap, remoraBin, "run", "--config", dir, "--bind-address", "127.0.0.1",
		"--outbound-port", strconv.Itoa(ports[0]), "--inbound-port", strconv.Itoa(ports[1]),
		"--admin-addr", addr(2), "--stats-addr", addr(3), "--health-addr", addr(4), "--access-log", "off")
	p = start(t, nil, argv...)
	if !waitFor(10*time.Second, func() bool { return get("http://"+addr(4)+"/healthz/ready") == 200 }) {
		t.Fatalf("remora not ready:\n%s", p.Output())
	}
	return addr(0), p
}

func proxyGet(proxy string) (int, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://web:8000/")
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestRunWithoutRoot: `remora run` in REDIRECT/explicit mode needs no
// privilege: as uid 1337 with no capabilities it binds, serves and
// proxies.
func TestRunWithoutRoot(t *testing.T) {
	var wrap []string
	if os.Getuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("setpriv not installed")
		}
		wrap = []string{"setpriv", "--reuid", "1337", "--regid", "1337", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"}
	}
	proxy, p := startRemora(t, wrap...)
	if code, err := proxyGet(proxy); code != 200 {
		t.Errorf("request through remora as uid 1337: %d %v\n%s", code, err, p.Output())
	}
}

// TestFDExhaustion: with RLIMIT_NOFILE nearly used up by idle clients,
// accept fails with EMFILE; remora backs off, keeps running, and serves
// again once the clients leave.
func TestFDExhaustion(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit not installed")
	}
	proxy, p := startRemora(t, "prlimit", "--nofile=64:64")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 100 { // more than the limit: the last ones are never accepted
		c, err := net.DialTimeout("tcp", proxy, time.Second)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	if code, _ := proxyGet(proxy); code == 200 {
		t.Log("served even with the descriptors held (limit not reached)")
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	ok := waitFor(10*time.Second, func() bool { code, _ := proxyGet(proxy); return code == 200 })
	if !strings.Contains(p.Output(), "too many open files") {
		t.Errorf("accept never failed with EMFILE: the test did not exhaust the descriptors")
	}
	if !ok || p.wait(0) != -1 {
		t.Errorf("after fd exhaustion: served %v, process running %v\n%s", ok, p.wait(0) == -1, p.Output())
	}
}
