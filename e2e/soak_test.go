package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remora-mesh/remora/internal/testns"
)

// soakMesh: web (HTTP, two flapping endpoints), grpc (GRPC, two flapping
// h2c endpoints), echo (TCP); web and grpc retry resets on another
// endpoint, as a service whose pods get killed is configured.
const soakMesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web]
  ports: [{number: 8000, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: %d}}, {address: 127.0.0.1, ports: {http: %d}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: grpc}
spec:
  hosts: [grpc]
  ports: [{number: 9000, name: grpc, protocol: GRPC}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {grpc: %d}}, {address: 127.0.0.1, ports: {grpc: %d}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo}
spec:
  hosts: [echo]
  ports: [{number: 7000, name: tcp, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {tcp: %s}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web, grpc]
  http:
  - headers: {response: {set: {x-generation: "%d"}}}
    retries: {attempts: 3, retryOn: "connect-failure,reset,refused-stream,unavailable,cancelled"}
    match: [{authority: {prefix: web}}]
    route: [{destination: {host: web}}]
  - retries: {attempts: 3, retryOn: "connect-failure,reset,refused-stream,unavailable,cancelled"}
    route: [{destination: {host: grpc}}]
`

// soakStats counts outcomes by kind.
type soakStats struct {
	mu       sync.Mutex
	ok       map[string]int
	expected map[string]int // failures of requests a backend fault hit
	bad      map[string][]string
}

func (s *soakStats) add(kind string, err error, killedDuring bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.ok[kind]++
	case killedDuring:
		s.expected[kind]++
	default:
		if len(s.bad[kind]) < 5 {
			s.bad[kind] = append(s.bad[kind], err.Error())
		}
		s.expected[kind+" unexpected"]++
	}
}

// soakDuration is REMORA_SOAK_DURATION (make soak: 10m), 30s by default.
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("REMORA_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("REMORA_SOAK_DURATION: %v", err)
		}
		return d
	}
	return 30 * time.Second
}

// TestSoak runs mixed HTTP/1.1, HTTP/2, gRPC and TCP (CONNECT) traffic
// through a real remora process while backends are killed and restarted,
// the config is rewritten every 3s and some clients are slow. Every
// request must succeed except those a backend fault hit (one endpoint of
// two down for 500ms: retries reselect with least-request P2C, as Envoy's
// previous_hosts does, so all of them can land on the dead one), remora must not
// panic, and its goroutines and RSS must come back within 10% of their
// idle level (measured after a warm-up) once traffic stops.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: skips the soak")
	}
	build(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ports := testns.FreePorts(t, 9)
	var kills, down atomic.Int64
	loop := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	backends := []*flappy{
		{addr: loop(5), handler: http.HandlerFunc(webHandler), kills: &kills, down: &down},
		{addr: loop(6), handler: http.HandlerFunc(webHandler), kills: &kills, down: &down},
		{addr: loop(7), handler: http.HandlerFunc(grpcHandler), h2c: true, kills: &kills, down: &down},
		{addr: loop(8), handler: http.HandlerFunc(grpcHandler), h2c: true, kills: &kills, down: &down},
	}
	for _, b := range backends {
		b.start(t)
		defer b.kill()
	}
	echoAddr := echoServer(t, ctx)
	_, echoPort, _ := net.SplitHostPort(echoAddr)
	dir := t.TempDir()
	write := func(gen int) {
		doc := fmt.Sprintf(soakMesh, ports[5], ports[6], ports[7], ports[8], echoPort, gen)
		tmp := filepath.Join(dir, ".mesh.tmp")
		if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "mesh.yaml")); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	p := start(t, nil, remoraBin, "run", "--config", dir, "--bind-address", "127.0.0.1",
		"--outbound-port", strconv.Itoa(ports[0]), "--inbound-port", strconv.Itoa(ports[1]),
		"--admin-addr", loop(2), "--stats-addr", loop(3), "--health-addr", loop(4), "--access-log", "off")
	if !waitFor(10*time.Second, func() bool { return get("http://"+loop(4)+"/healthz/ready") == 200 }) {
		t.Fatalf("remora not ready:\n%s", p.Output())
	}
	c := newSoakClients(loop(0))
	c.echo = echoAddr
	stats := &soakStats{ok: map[string]int{}, expected: map[string]int{}, bad: map[string][]string{}}

	// Warm up, without faults, then take the idle figures.
	runTraffic(ctx, c, stats, &kills, &down, time.Now().Add(3*time.Second))
	c.closeIdle()
	idleG, idleRSS := settle(t, loop(2), p, 0, 0)
	t.Logf("idle after warm-up: %d goroutines, RSS %d KiB", idleG, idleRSS>>10)

	d := soakDuration(t)
	end := time.Now().Add(d)
	var faults sync.WaitGroup
	faults.Add(2)
	go func() { defer faults.Done(); flap(t, backends, end) }()
	reloads := 0
	go func() {
		defer faults.Done()
		for gen := 1; time.Now().Before(end); gen++ {
			tm := time.NewTimer(3 * time.Second)
			<-tm.C
			write(gen)
			reloads = gen
		}
	}()
	runTraffic(ctx, c, stats, &kills, &down, end)
	faults.Wait()
	c.closeIdle()
	g, rss := settle(t, loop(2), p, idleG, idleRSS)

	t.Logf("soak %s: ok %v; failed while a backend was down or being killed %v; %d kills and restarts, %d reloads", d, stats.ok, stats.expected, kills.Load(), reloads)
	t.Logf("after: %d goroutines (idle %d), RSS %d KiB (idle %d KiB)", g, idleG, rss>>10, idleRSS>>10)
	for kind, errs := range stats.bad {
		t.Errorf("%s: %d unexpected failures, e.g. %q", kind, stats.expected[kind+" unexpected"], errs)
	}
	if strings.Contains(p.Output(), "panic") {
		t.Errorf("remora panicked:\n%s", p.Output())
	}
	if !within(g, idleG) || !within(rss, idleRSS) {
		t.Errorf("goroutines %d (idle %d) or RSS %d KiB (idle %d KiB) not back within 10%% of idle", g, idleG, rss>>10, idleRSS>>10)
	}
}

// within reports whether v is at most 10% above idle (plus 5 for the
// goroutine count's granularity).
func within(v, idle int64) bool { return v <= idle+idle/10+5 }

// flap kills one backend of each pair in turn and restarts it 500ms later.
func flap(t *testing.T, backends []*flappy, end time.Time) {
	for i := 0; time.Now().Before(end); i++ {
		tm := time.NewTimer(2 * time.Second)
		<-tm.C
		web, grpc := backends[i%2], backends[2+i%2]
		web.kill()
		grpc.kill()
		tm = time.NewTimer(500 * time.Millisecond)
		<-tm.C
		web.start(t)
		grpc.start(t)
	}
}

// settle waits (at most 20s) for remora's goroutines and RSS to come
// back within 10% of the idle figures (or, with no figures yet, to stop
// falling) and returns them.
func settle(t *testing.T, admin string, p *proc, idleG, idleRSS int64) (g, rss int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	prev := int64(-1)
	for {
		tm := time.NewTimer(time.Second)
		<-tm.C
		g, rss = goroutines(admin), rssOf(p)
		done := idleG == 0 && g == prev || idleG > 0 && within(g, idleG) && within(rss, idleRSS)
		if done || time.Now().After(deadline) {
			return g, rss
		}
		prev = g
	}
}

// goroutines reads the count from the admin port's goroutine profile.
func goroutines(admin string) int64 {
	resp, err := http.Get("http://" + admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	_, n, _ := strings.Cut(strings.TrimSpace(line), "total ")
	v, _ := strconv.ParseInt(n, 10, 64)
	return v
}

// rssOf reads VmRSS of the process in bytes.
func rssOf(p *proc) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

// soakClients are the clients of each traffic kind.
type soakClients struct {
	proxy    string
	h1, h2   *http.Client
	h1Trans  *http.Transport
	h2Trans  *http.Transport
	perCall  time.Duration
	tcpBytes []byte
	echo     string // the TCP echo server's address
}

func newSoakClients(proxy string) *soakClients {
	c := &soakClients{proxy: proxy, perCall: 15 * time.Second, tcpBytes: bytes.Repeat([]byte("echo!"), 200)}
	c.h1Trans = &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy}), MaxIdleConnsPerHost: 8}
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	c.h2Trans = &http.Transport{Protocols: p, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", proxy)
	}}
	c.h1 = &http.Client{Transport: c.h1Trans, Timeout: c.perCall}
	c.h2 = &http.Client{Transport: c.h2Trans, Timeout: c.perCall}
	return c
}

func (c *soakClients) closeIdle() {
	c.h1Trans.CloseIdleConnections()
	c.h2Trans.CloseIdleConnections()
}
