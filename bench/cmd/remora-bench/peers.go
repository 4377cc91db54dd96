package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/remora-mesh/remora/bench/internal/tcpbulk"
)

// benchHost is the Host every load generator sends; remora routes by it.
const benchHost = "httpbin:8000"

// meshConfig is remora's config as users run it: the bench service with
// a VirtualService (a header match rule ahead of the default route, a
// response header set) and a DestinationRule with connection pool limits
// and outlier detection, beside a bookinfo-sized registry.
const meshConfig = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  ports: [{number: 8000, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: %d}, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: httpbin, subset: v1}}]
  - route: [{destination: {host: httpbin, subset: v1}}]
    headers: {response: {set: {x-bench: remora}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1024, connectTimeout: 1s}
      http: {http1MaxPendingRequests: 1024, http2MaxRequests: 1024, idleTimeout: 60s}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
  subsets: [{name: v1, labels: {version: v1}}]
`

// bookinfo is the rest of the registry: Istio's bookinfo services with
// their usual VirtualServices and DestinationRules.
const bookinfo = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %[1]s}
spec:
  hosts: [%[1]s]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.0.1, ports: {http: 1}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {http: 2}, labels: {version: v2}}
  - {address: 127.0.0.1, ports: {http: 3}, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %[1]s}
spec:
  hosts: [%[1]s]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: %[1]s, subset: v2}}]
  - route:
    - {destination: {host: %[1]s, subset: v1}, weight: 90}
    - {destination: {host: %[1]s, subset: v3}, weight: 10}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: %[1]s}
spec:
  host: %[1]s
  trafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
`

// writeMesh writes remora's config for a backend on port, plus extra
// generated services (0 for the bookinfo-sized config).
func writeMesh(dir string, backendPort, extra int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, meshConfig, backendPort)
	b.WriteString("---\n")
	for _, s := range []string{"productpage", "reviews", "ratings", "details"} {
		fmt.Fprintf(&b, bookinfo, s)
	}
	for i := range extra {
		fmt.Fprintf(&b, bookinfo, "svc-"+strconv.Itoa(i))
	}
	return os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(b.String()), 0o644)
}

// remora is a running `remora run` on loopback ports.
type remora struct {
	*proc
	addr, health, admin string
}

// startRemora runs remora pinned to cpu with GOMAXPROCS=1 and waits
// until it is ready. Metrics stay on (they always are); the access log
// goes to a file, as a sidecar writing its log would.
func startRemora(bin, dir, name string, cpu int, cfg string) (*remora, error) {
	ports := []int{freePort(), freePort(), freePort(), freePort(), freePort()}
	a := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	argv := pinned(cpu, bin, "run", "--config", cfg, "--bind-address", "127.0.0.1",
		"--outbound-port", strconv.Itoa(ports[0]), "--inbound-port", strconv.Itoa(ports[1]),
		"--admin-addr", a(2), "--stats-addr", a(3), "--health-addr", a(4),
		"--log-level", "warn", "--access-log", filepath.Join(dir, name+"-access.log"))
	p, _, err := start(dir, name, []string{"GOMAXPROCS=1"}, argv...)
	if err != nil {
		return nil, err
	}
	r := &remora{proc: p, addr: a(0), health: a(4), admin: a(2)}
	if err := waitReady("http://"+r.health+"/healthz/ready", 20*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w (see %s.log)", name, err, name)
	}
	return r, nil
}

func waitReady(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s", timeout)
}

// nginxConf is one worker, no master, upstream keepalive, access log
// buffered to a file (flushed every second, as remora's is).
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
%[4]s
events { worker_connections 19000; multi_accept on; }
%[2]s {
%[3]s
}
`

const nginxHTTP = `  access_log %[1]s/nginx-access.log combined buffer=64k flush=1s;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  keepalive_requests 1000000; keepalive_timeout 3600s;
  upstream be { server %[2]s; keepalive 128; keepalive_requests 1000000; }
  server {
    listen %[3]s reuseport;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering on;
    }
  }`

const nginxTCP = `  server { listen %[3]s reuseport; proxy_pass %[2]s; proxy_half_close on; }`

// nginxStreamModule is Debian's nginx TCP proxy module (package
// libnginx-mod-stream), which nginx itself does not pull in.
const nginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// startNginx runs nginx pinned to cpu in front of backend; tcp selects
// the stream (L4) proxy instead of HTTP. ns, when set, runs it in that
// network namespace (listenAddr says where it listens).
func startNginx(dir string, cpu int, backend string, tcp bool, ns string) (*proc, string, error) {
	addr := listenAddr(tcp, ns)
	block, body, mod := "http", fmt.Sprintf(nginxHTTP, dir, backend, addr), ""
	if tcp {
		block, body = "stream", fmt.Sprintf(nginxTCP, dir, backend, addr)
		mod = "load_module " + nginxStreamModule + ";"
	}
	conf := filepath.Join(dir, "nginx-"+block+".conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, block, body, mod)), 0o644); err != nil {
		return nil, "", err
	}
	p, _, err := start(dir, "nginx-"+block, nil, inNS(ns, pinned(cpu, "nginx", "-c", conf)...)...)
	if err != nil {
		return nil, "", err
	}
	return p, addr, nil
}

// haproxyConf is one thread, http-reuse always, keep-alive both sides,
// no access log (HAProxy logs only to syslog; see docs/performance.md).
// HAProxy reserves two descriptors per maxconn, so under a 20,000 file
// limit it holds fewer idle connections than the others.
const haproxyConf = `global
  nbthread 1
  maxconn %[5]d
defaults
  mode %[1]s
  timeout connect 5s
  timeout client 3600s
  timeout server 3600s
  timeout http-keep-alive 3600s
%[4]s
frontend fe
  bind %[2]s
  default_backend be
backend be
  server s1 %[3]s
`

// startHAProxy runs HAProxy pinned to cpu in front of backend.
func startHAProxy(dir string, cpu int, backend string, tcp bool, ns string) (*proc, string, error) {
	addr := listenAddr(tcp, ns)
	mode, opts := "http", "  option http-keep-alive\n  http-reuse always"
	if tcp {
		mode, opts = "tcp", ""
	}
	conf := filepath.Join(dir, "haproxy-"+mode+".cfg")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(haproxyConf, mode, addr, backend, opts, haproxyMaxConn())), 0o644); err != nil {
		return nil, "", err
	}
	p, _, err := start(dir, "haproxy-"+mode, nil, inNS(ns, pinned(cpu, "haproxy", "-db", "-f", conf)...)...)
	if err != nil {
		return nil, "", err
	}
	return p, addr, nil
}

// listenAddr is where a peer proxy listens: a TCP proxy in a captured
// namespace takes the capture port, as a sidecar does; anything else a
// free loopback port.
func listenAddr(tcp bool, ns string) string {
	if tcp && ns != "" {
		return "127.0.0.1:" + tcpbulk.CapturePort
	}
	return "127.0.0.1:" + strconv.Itoa(freePort())
}

// inNS prefixes argv with `ip netns exec NS` when ns is set.
func inNS(ns string, argv ...string) []string {
	if ns == "" {
		return argv
	}
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}

func have(names ...string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return false
		}
	}
	return true
}

// haproxyMaxConn is the most connections HAProxy can take under this
// process's file limit (it needs two descriptors per connection).
func haproxyMaxConn() int {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 4000
	}
	return int(min(lim.Cur, lim.Max)/2) - 100
}
