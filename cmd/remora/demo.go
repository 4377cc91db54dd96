package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"go.uber.org/zap"
)

//go:embed demo/mesh.yaml
var demoMesh string

// cmdDemo runs remora's main job on an embedded config: it starts demo
// backends and a real `remora run` process on ephemeral 127.0.0.1 ports,
// sends traffic through it as an app using HTTP_PROXY would, and prints
// what happened.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", stderr)
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := runDemo(ctx, stdout); err != nil {
		fmt.Fprintf(stderr, "remora demo: %v\n", err)
		return 1
	}
	return 0
}

// demoBackends are the upstream servers of the demo mesh.
type demoBackends struct {
	servers []*httptest.Server
	ports   map[string]int
}

func startDemoBackends() *demoBackends {
	b := &demoBackends{ports: map[string]int{}}
	add := func(name string, h http.Handler) {
		s := httptest.NewServer(h)
		b.servers = append(b.servers, s)
		b.ports[name] = s.Listener.Addr().(*net.TCPAddr).Port
	}
	for _, v := range []string{"V1", "V2", "V3"} {
		body := "reviews-" + strings.ToLower(v)
		add(v, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }))
	}
	add("Ratings", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ratings") }))
	add("Httpbin", http.HandlerFunc(demoDelay))
	return b
}

// demoDelay is the demo's httpbin: /delay/D answers 200 after D (a Go
// duration, or seconds as httpbin takes them, at most 10s), which is all
// the circuit-breaker row needs. go-httpbin itself stays a test
// dependency, out of the sidecar binary.
func demoDelay(w http.ResponseWriter, r *http.Request) {
	arg, ok := strings.CutPrefix(r.URL.Path, "/delay/")
	d, err := time.ParseDuration(arg)
	if err != nil {
		var secs float64
		_, err = fmt.Sscanf(arg, "%g", &secs)
		d = time.Duration(secs * float64(time.Second))
	}
	if !ok || err != nil || d < 0 {
		http.Error(w, "use /delay/<duration>", http.StatusNotFound)
		return
	}
	select {
	case <-time.After(min(d, 10*time.Second)):
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"url\": %q, \"delay\": %q}\n", "http://"+r.Host+r.URL.Path, d.String())
	case <-r.Context().Done():
	}
}

func (b *demoBackends) close() {
	for _, s := range b.servers {
		s.Close()
	}
}

func runDemo(ctx context.Context, out io.Writer) error {
	bs := startDemoBackends()
	defer bs.close()
	dir, err := os.MkdirTemp("", "remora-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var cfg bytes.Buffer
	if err := template.Must(template.New("mesh").Parse(demoMesh)).Execute(&cfg, bs.ports); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), cfg.Bytes(), 0o644); err != nil {
		return err
	}
	proxyAddr, stop, err := startDemoProxy(ctx, dir)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(out, "remora demo: backends reviews v1/v2/v3, ratings and httpbin on 127.0.0.1, a remora proxy on %s,\n", proxyAddr)
	fmt.Fprintf(out, "and an embedded bookinfo-style config. Requests go through remora as HTTP_PROXY=http://%s.\n\n", proxyAddr)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxyAddr}), MaxIdleConnsPerHost: 8}}
	rows := []demoRow{
		runRow(client, "200 × GET reviews", "VirtualService 90/10 split v1/v2", 200, 1, "http://reviews:9080/reviews/1", nil),
		runRow(client, "20 × GET reviews, end-user: jason", "header match → subset v3", 20, 1, "http://reviews:9080/reviews/1", http.Header{"End-User": {"jason"}}),
		runRow(client, "200 × GET ratings", "fault abort 500 at 50%", 200, 1, "http://ratings:9080/ratings/1", nil),
		runRow(client, "3 clients × 10 × GET httpbin", "DestinationRule: 1 connection, 1 pending", 10, 3, "http://httpbin:8000/delay/20ms", nil),
	}
	printRows(out, rows)
	fmt.Fprintln(out, "\nEvery answer came through remora: the split, the header route, the fault (flag FI) and the")
	fmt.Fprintln(out, "circuit breaker (503 with x-envoy-overloaded, flag UO) are Istio's semantics from plain Istio YAML.")
	return nil
}

// startDemoProxy runs the real `remora run` on ephemeral loopback ports and
// returns its outbound (explicit proxy) address once it is ready.
func startDemoProxy(ctx context.Context, dir string) (string, func(), error) {
	f := &runFlags{config: dir, role: "sidecar", namespace: "default", domain: "cluster.local",
		adminAddr: "127.0.0.1:0", statsAddr: "127.0.0.1:0", healthAddr: "127.0.0.1:0", bindAddress: "127.0.0.1",
		drainDuration: time.Second, logLevel: "error", accessLog: "off"}
	p := newProcess(f, zap.NewNop())
	outbound := make(chan string, 1)
	p.onListen = func(name string, addr net.Addr) {
		if name == "outbound" {
			outbound <- addr.String()
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.run(rctx) }()
	stop := func() { cancel(); <-done }
	var addr string
	select {
	case addr = <-outbound:
	case err := <-done:
		cancel()
		return "", func() {}, err
	case <-ctx.Done():
		stop()
		return "", func() {}, ctx.Err()
	}
	for !p.ready.Load() {
		select {
		case <-ctx.Done():
			stop()
			return "", func() {}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return addr, stop, nil
}

// demoRow is one line of the report: what was sent and what came back.
type demoRow struct {
	traffic, config string
	results         map[string]int
	total           int
}

// runRow sends n requests from each of clients concurrent clients and
// tallies the answers by body (for 200s) or by status and Envoy's signals.
func runRow(c *http.Client, traffic, cfg string, n, clients int, target string, h http.Header) demoRow {
	row := demoRow{traffic: traffic, config: cfg, results: map[string]int{}, total: n * clients}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				key := demoRequest(c, target, h)
				mu.Lock()
				row.results[key]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return row
}

func demoRequest(c *http.Client, target string, h http.Header) string {
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		return "error"
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.Header.Get("X-Envoy-Overloaded") == "true":
		return "503 overflow (UO)"
	case string(body) == "fault filter abort":
		return fmt.Sprintf("%d fault filter abort (FI)", resp.StatusCode)
	case resp.StatusCode == http.StatusOK && len(body) < 40:
		return string(body)
	}
	return fmt.Sprintf("%d", resp.StatusCode)
}

func printRows(out io.Writer, rows []demoRow) {
	fmt.Fprintf(out, "%-36s %-42s %s\n", "traffic", "config", "what happened")
	fmt.Fprintf(out, "%-36s %-42s %s\n", strings.Repeat("-", 34), strings.Repeat("-", 40), strings.Repeat("-", 34))
	for _, r := range rows {
		keys := make([]string, 0, len(r.results))
		for k := range r.results {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d (%.0f%%)", k, r.results[k], 100*float64(r.results[k])/float64(r.total)))
		}
		fmt.Fprintf(out, "%-36s %-42s %s\n", r.traffic, r.config, strings.Join(parts, ", "))
	}
}
