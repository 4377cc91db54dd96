package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConnectToServiceByShortName tunnels CONNECT echo:7000 (a TCP
// ServiceEntry named by its short host) to the service's endpoint.
func TestConnectToServiceByShortName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	se := fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: echo}\nspec:\n  hosts: [echo]\n  ports: [{number: 7000, name: tcp, protocol: TCP, targetPort: %d}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1}]\n",
		ln.Addr().(*net.TCPAddr).Port)
	p := startProxy(t, 80, se)
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "CONNECT echo:7000 HTTP/1.1\r\nHost: echo:7000\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT echo:7000: %v %v; want 200", resp, err)
	}
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ping" {
		t.Errorf("echo through the tunnel = %q, %v; want ping", line, err)
	}
}
