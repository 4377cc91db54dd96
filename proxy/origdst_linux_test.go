package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TestOriginalDstRedirect redirects connections to 198.18.0.5:80 and
// [fd00:198:18::5]:80 to a listener with iptables REDIRECT in a namespace
// it creates, and checks OriginalDst recovers them. A connection made to
// the listener directly reports the listener's own address.
func TestOriginalDstRedirect(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace and iptables rules")
	}
	for _, bin := range []string{"ip", "iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	ns := testNetns(t)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	enter(t, ns)
	ln, err := net.Listen("tcp", ":0") // dual-stack, as the capture listeners
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	run("ip", "netns", "exec", ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "198.18.0.5", "--dport", "80", "-j", "REDIRECT", "--to-ports", port)
	run("ip", "netns", "exec", ns, "ip6tables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "fd00:198:18::5", "--dport", "80", "-j", "REDIRECT", "--to-ports", port)
	tests := []struct {
		name, dial, want string
	}{
		{"ipv4", "198.18.0.5:80", "198.18.0.5:80"},
		{"ipv6", "[fd00:198:18::5]:80", "[fd00:198:18::5]:80"},
		{"not redirected", "127.0.0.1:" + port, "127.0.0.1:" + port},
	}
	// No subtests: they would run on other goroutines, outside ns.
	for _, tt := range tests {
		c, err := net.DialTimeout("tcp", tt.dial, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		a, err := ln.Accept()
		if err != nil {
			c.Close()
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := OriginalDst(a.(*net.TCPConn))
		if err != nil || got != netip.MustParseAddrPort(tt.want) {
			t.Errorf("%s: OriginalDst = %v, %v; want %v", tt.name, got, err, tt.want)
		}
		a.Close()
		c.Close()
	}
}

// testNetns creates a namespace with lo up and veth0 holding
// 198.18.0.1/15 and fd00:198:18::1/64 (both veth ends inside), deleted
// when the test ends.
func testNetns(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	ns := "remora-proxy-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "veth0", "type", "veth", "peer", "name", "veth1"},
		{"link", "set", "veth0", "up"},
		{"link", "set", "veth1", "up"},
		{"addr", "add", "198.18.0.1/15", "dev", "veth0"},
		{"-6", "addr", "add", "fd00:198:18::1/64", "dev", "veth0", "nodad"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	return ns
}

// enter moves the test's goroutine, locked to its thread, into ns for the
// rest of the test; the thread is discarded afterwards (the goroutine
// exits locked), so no other goroutine ever runs in ns.
func enter(t *testing.T, ns string) {
	t.Helper()
	runtime.LockOSThread()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
}
