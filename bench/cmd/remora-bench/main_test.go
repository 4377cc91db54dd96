package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/remora-mesh/remora/config"
)

// TestMeshConfigValid checks that the configs the suite gives remora load
// without errors, so a benchmark never measures a 404 or a rejected file.
func TestMeshConfigValid(t *testing.T) {
	for _, extra := range []int{0, 3} {
		dir := t.TempDir()
		if err := writeMesh(dir, 8080, extra); err != nil {
			t.Fatal(err)
		}
		_, diags, err := config.Load(dir, config.Options{})
		if err != nil || diags.HasErrors() {
			t.Fatalf("extra=%d: %v %v", extra, err, diags.Errors())
		}
	}
}

// TestBackend checks the fixed-response backend over keep-alive.
func TestBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	small := append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), "small"...)
	big := append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"), "big"...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveBackend(c, small, big)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tt := range []struct{ path, want string }{{"/", "small"}, {"/16k", "big"}, {"/", "small"}} {
		io.WriteString(c, "GET "+tt.path+" HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != tt.want {
			t.Errorf("GET %s = %q; want %q", tt.path, b, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 2, 3}, 2.5}}
	for _, tt := range tests {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v; want %v", tt.xs, got, tt.want)
		}
	}
}
