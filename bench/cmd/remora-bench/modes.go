package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/remora-mesh/remora/bench/internal/tcpbulk"
)

// The suite re-executes its own binary for every helper process, so each
// can be pinned and measured on its own: `remora-bench MODE ARGS...`.
var modes = map[string]func(args []string) int{
	"backend":   modeBackend,
	"rproxy":    modeReverseProxy,
	"spin":      modeSpin,
	"tcpsink":   modeTCPSink,
	"tcpproxy":  modeTCPProxy,
	"tcpclient": modeTCPClient,
}

// smallBody and bigBody are the two response sizes the backend serves:
// "/" answers smallBody, any path starting "/16k" answers bigBody.
var (
	smallBody = []byte("remora bench: a small response body.\n")
	bigBody   = bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
)

// listenPrint listens on 127.0.0.1:0 and prints the address on stdout,
// the parent's signal that the helper is ready.
func listenPrint() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fmt.Println(ln.Addr())
	return ln, nil
}

// exitOnStdinEOF ends the helper when its parent goes away.
func exitOnStdinEOF() {
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
}

// modeBackend is a minimal HTTP/1.1 keep-alive server: it reads request
// heads (GET, no bodies) and answers fixed responses, so the backend
// costs as little of the load generator's core as possible.
func modeBackend(args []string) int {
	ln, err := listenPrint()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exitOnStdinEOF()
	head := func(b []byte) []byte {
		return []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n")
	}
	small := append(head(smallBody), smallBody...)
	big := append(head(bigBody), bigBody...)
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go serveBackend(c, small, big)
	}
}

func serveBackend(c net.Conn, small, big []byte) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		resp := small
		if i := bytes.IndexByte(line, ' '); i >= 0 && bytes.HasPrefix(line[i+1:], []byte("/16k")) {
			resp = big
		}
		for { // skip the header fields up to the empty line
			h, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(h) <= 2 {
				break
			}
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// modeReverseProxy is the plain Go peer: httputil.ReverseProxy with the
// default Transport's keep-alive pool, no logging. args: backend address.
func modeReverseProxy(args []string) int {
	target := &url.URL{Scheme: "http", Host: args[0]}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	ln, err := listenPrint()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exitOnStdinEOF()
	return exitErr(http.Serve(ln, rp))
}

// modeSpin is a busy loop meant to run under SCHED_IDLE on one CPU: it
// keeps the vCPU from halting (waking a halted vCPU costs hundreds of
// µs on this kind of VM) and yields at once to any real work.
func modeSpin(args []string) int {
	runtime.GOMAXPROCS(1)
	exitOnStdinEOF()
	x := 0
	for {
		for i := 0; i < 1<<20; i++ {
			x += i
		}
		if x == 42 {
			fmt.Print("")
		}
	}
}

// modeTCPSink is tcpbulk.Sink on a fresh loopback port.
func modeTCPSink(args []string) int {
	ln, err := listenPrint()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	exitOnStdinEOF()
	return exitErr(tcpbulk.Sink(ln))
}

// modeTCPProxy is the plain Go TCP peer, tcpbulk.Proxy. args: target
// address, then optionally the address to listen on (default a fresh
// loopback port).
func modeTCPProxy(args []string) int {
	listen := "127.0.0.1:0"
	if len(args) > 1 {
		listen = args[1]
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr())
	exitOnStdinEOF()
	return exitErr(tcpbulk.Proxy(ln, args[0]))
}

// modeTCPClient sends args[1] bytes to args[0] over one connection with
// tcpbulk.Send and prints the elapsed seconds.
func modeTCPClient(args []string) int {
	n, _ := strconv.ParseInt(args[1], 10, 64)
	c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	el, err := tcpbulk.Send(c.(*net.TCPConn), n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%.6f\n", el.Seconds())
	return 0
}

func exitErr(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
