// Package testns gives tests what they need to run real networking
// safely: a network namespace of their own that nothing can leave, and
// free loopback ports. It is for tests only.
package testns

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// VIPNet is the range test VIPs come from; New routes it (and its IPv6
// twin fd00:198:18::/64) to a veth pair that lives entirely inside the
// namespace, so traffic to a VIP can never leave it.
const VIPNet = "198.18.0.0/15"

// New creates a network namespace named prefix-<random> with lo up and a
// veth pair veth0/veth1 whose both ends stay inside it, veth0 holding
// 198.18.0.1/15 and fd00:198:18::1/64. It is deleted when the test ends,
// after the cleanups registered later (processes started in it) have run.
// The test is skipped when the namespace cannot be created.
func New(tb testing.TB, prefix string) string {
	tb.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	ns := prefix + "-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		tb.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "veth0", "type", "veth", "peer", "name", "veth1"},
		{"link", "set", "veth0", "up"},
		{"link", "set", "veth1", "up"},
		{"addr", "add", "198.18.0.1/15", "dev", "veth0"},
		{"-6", "addr", "add", "fd00:198:18::1/64", "dev", "veth0", "nodad"},
	} {
		argv := append([]string{"-n", ns}, args...)
		if out, err := exec.Command("ip", argv...).CombinedOutput(); err != nil {
			tb.Fatalf("ip %s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	return ns
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago.
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
