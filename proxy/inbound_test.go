package proxy

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// peerServer answers each connection with the peer address it saw.
func peerServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, c.RemoteAddr().String()+"\n")
			c.Close()
		}
	}()
	return addrPortOf(ln.Addr())
}

func TestInboundForwardsFrom127006(t *testing.T) {
	st := testStore(t, testConfig)
	dst := peerServer(t)
	tl := startListener(t, st, true, dst, "")
	c := dialTest(t, tl.addr)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading peer: %v", err)
	}
	if !strings.HasPrefix(line, "127.0.0.6:") {
		t.Errorf("backend saw the connection from %q; want 127.0.0.6", strings.TrimSpace(line))
	}
	c.Close()
	r := tl.record(t)
	if r.Cluster != InboundPassthroughCluster || r.UpstreamHost != dst.String() {
		t.Errorf("record cluster %q host %q; want %q %q", r.Cluster, r.UpstreamHost, InboundPassthroughCluster, dst)
	}
}

func TestInboundHTTP(t *testing.T) {
	st := testStore(t, testConfig)
	dst := netip.MustParseAddrPort("127.0.0.1:7071") // self.example's endpoint, declared HTTP
	tl := startListener(t, st, true, dst, "")
	c := dialTest(t, tl.addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: self\r\n\r\n")
	io.ReadAll(io.LimitReader(c, 100))
	ci := tl.http.last(t)
	if !ci.Inbound || ci.Original != dst || hostOf(ci.Service) != "self.example" || ci.Port != 7071 {
		t.Errorf("ConnInfo inbound %v original %v service %q port %d; want true %v self.example 7071", ci.Inbound, ci.Original, hostOf(ci.Service), ci.Port, dst)
	}
}

func TestInboundSniffsHTTP(t *testing.T) {
	st := testStore(t, testConfig)
	tl := startListener(t, st, true, netip.MustParseAddrPort("127.0.0.1:9999"), "")
	c := dialTest(t, tl.addr)
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, _ := io.ReadAll(io.LimitReader(c, 200))
	if !strings.Contains(string(resp), "X-Line: GET /x HTTP/1.1") {
		t.Errorf("response %q", resp)
	}
	if ci := tl.http.last(t); !ci.Inbound || ci.Service != nil {
		t.Errorf("ConnInfo inbound %v service %v; want true nil", ci.Inbound, ci.Service)
	}
}

func TestInboundToListenerPortIsClosed(t *testing.T) {
	st := testStore(t, testConfig)
	tl := startListener(t, st, true, netip.AddrPort{}, "") // not NATed: original = the listener itself
	c := dialTest(t, tl.addr)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection to the inbound port itself was served")
	}
}
