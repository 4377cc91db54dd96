package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// helperEnv selects a helper role when the test binary is re-executed
// inside the namespace: "servers" or "client".
const helperEnv = "REMORA_E2E_HELPER"

// Backend ports inside the namespace.
const (
	httpbinPort     = 8000
	echoPort        = 9001
	serverFirstPort = 2526
	hairpinPort     = 7001
	banner          = "220 remora-e2e ready\r\n"
)

// runHelper runs the helper role named by helperEnv and returns the
// process exit code.
func runHelper(role string) int {
	switch role {
	case "servers":
		return runServers()
	case "client":
		return runClient()
	}
	fmt.Fprintf(os.Stderr, "unknown helper %q\n", role)
	return 2
}

// seen prints what a backend saw, one line per connection or request,
// for the test to read.
var seenMu sync.Mutex

func seen(kind, remote, what string) {
	seenMu.Lock()
	defer seenMu.Unlock()
	fmt.Printf("seen %s %s %s\n", kind, remote, what)
}

// runServers starts go-httpbin, a peer-reporting echo server, a
// server-first (banner) server and the hairpin echo server, prints
// "ready", and serves until SIGTERM or stdin closes.
func runServers() int {
	hb := httpbin.New()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen("http", r.RemoteAddr, r.Method+" "+r.URL.Path)
		hb.ServeHTTP(w, r)
	})
	type srv struct {
		addr  string
		serve func(net.Listener)
	}
	servers := []srv{
		{fmt.Sprintf("127.0.0.1:%d", httpbinPort), func(ln net.Listener) { http.Serve(ln, h) }},
		{fmt.Sprintf("[::1]:%d", httpbinPort), func(ln net.Listener) { http.Serve(ln, h) }},
		{fmt.Sprintf("127.0.0.1:%d", echoPort), func(ln net.Listener) { serveTCP(ln, "echo", "") }},
		{fmt.Sprintf("[::1]:%d", echoPort), func(ln net.Listener) { serveTCP(ln, "echo", "") }},
		{fmt.Sprintf("127.0.0.1:%d", serverFirstPort), func(ln net.Listener) { serveTCP(ln, "banner", banner) }},
		{fmt.Sprintf("[::1]:%d", serverFirstPort), func(ln net.Listener) { serveTCP(ln, "banner", banner) }},
		{fmt.Sprintf(":%d", hairpinPort), func(ln net.Listener) { serveTCP(ln, "hairpin", "") }},
	}
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "listen %s: %v\n", s.addr, err)
			return 1
		}
		go s.serve(ln)
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	stdin := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stdin) }()
	select {
	case <-sig:
	case <-stdin:
	}
	return 0
}

// serveTCP answers each connection with "peer <addr>\n" (or the banner),
// then echoes what it reads.
func serveTCP(ln net.Listener, kind, greeting string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		seen(kind, c.RemoteAddr().String(), c.LocalAddr().String())
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			first := greeting
			if first == "" {
				first = "peer " + c.RemoteAddr().String() + "\n"
			}
			io.WriteString(c, first)
			io.Copy(c, c)
		}()
	}
}

// op is one client action; the client reads a JSON list of them from
// its first argument and prints a JSON list of results.
type op struct {
	Op   string `json:"op"` // "http", "echo", "banner" or "ready"
	Addr string `json:"addr"`
	URL  string `json:"url"`
}

type result struct {
	Op     string `json:"op"`
	Addr   string `json:"addr"`
	Local  string `json:"local,omitempty"`
	First  string `json:"first,omitempty"`
	Echo   string `json:"echo,omitempty"`
	Status int    `json:"status,omitempty"`
	Err    string `json:"err,omitempty"`
}

func runClient() int {
	var ops []op
	if err := json.Unmarshal([]byte(os.Args[len(os.Args)-1]), &ops); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var out []result
	for _, o := range ops {
		out = append(out, do(o))
	}
	json.NewEncoder(os.Stdout).Encode(out)
	return 0
}

func do(o op) result {
	r := result{Op: o.Op, Addr: o.Addr + o.URL}
	switch o.Op {
	case "ready":
		// Bounded: 100 tries, 50ms apart.
		for range 100 {
			if resp, err := http.Get(o.URL); err == nil {
				resp.Body.Close()
				if r.Status = resp.StatusCode; r.Status == 200 {
					return r
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		r.Err = "not ready after 5s"
	case "http":
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		resp, err := cl.Get(o.URL)
		if err != nil {
			r.Err = err.Error()
			return r
		}
		defer resp.Body.Close()
		r.Status = resp.StatusCode
	case "echo", "banner":
		r.Local, r.First, r.Echo, r.Err = tcpExchange(o.Addr, "ping "+o.Addr+"\n")
	}
	return r
}

// tcpExchange connects, reads the server's first line, sends msg and
// reads it back.
func tcpExchange(addr, msg string) (local, first, echo, errs string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", "", "", err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	local = c.LocalAddr().String()
	br := bufio.NewReader(c)
	first, err = br.ReadString('\n')
	if err != nil {
		return local, first, "", "reading first line: " + err.Error()
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return local, first, "", err.Error()
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(br, b); err != nil {
		return local, first, string(b), "reading echo: " + err.Error()
	}
	return local, strings.TrimRight(first, "\r\n"), string(b), ""
}
