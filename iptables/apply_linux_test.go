package iptables

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// newNetns creates a network namespace for one test, with lo up and a few
// rules of someone else's in every table we touch, and deletes it when
// the test ends. Tests never touch the host's own namespace.
func newNetns(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace and iptables rules")
	}
	for _, bin := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("iptables not installed (%s missing): apt-get install iptables", bin)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip not installed: apt-get install iproute2")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "remora-ipt-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace (needs CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	nsRun(t, name, "ip", "link", "set", "lo", "up")
	for _, tool := range []string{"iptables", "ip6tables"} {
		nsRun(t, name, tool, "-t", "nat", "-A", "OUTPUT", "-p", "udp", "--dport", "9", "-j", "RETURN")
		nsRun(t, name, tool, "-t", "nat", "-A", "PREROUTING", "-p", "udp", "--dport", "9", "-j", "RETURN")
		nsRun(t, name, tool, "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--dport", "9", "-j", "RETURN")
		nsRun(t, name, tool, "-t", "mangle", "-A", "PREROUTING", "-p", "udp", "--dport", "9", "-j", "RETURN")
	}
	return name
}

// nsRun runs a command inside the namespace ns and returns its output.
func nsRun(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// saveAll is iptables-save and ip6tables-save in ns, without the
// timestamped comments.
func saveAll(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		for _, line := range strings.Split(nsRun(t, ns, tool), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// routing describes ns's TPROXY routing state: policy rules with mark,
// local routes in table, and ::6 on lo, one line per entry found.
func routing(t *testing.T, ns string, mark uint32, table int) []string {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	var got []string
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := nl.RuleList(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if r.Mark == mark && r.Table == table {
				got = append(got, r.String())
			}
		}
		routes, err := nl.RouteListFiltered(fam, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Type == unix.RTN_LOCAL {
				got = append(got, "local "+r.Dst.String())
			}
		}
	}
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := nl.AddrList(lo, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IP.Equal(net.ParseIP("::6")) {
			got = append(got, "addr ::6")
		}
	}
	return got
}

func TestApplyInNetns(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		// routing is how many routing entries TPROXY adds.
		routing int
	}{
		{"defaults", func(c *Config) {}, 0},
		{"ipv6-everything", func(c *Config) {
			c.IPv6 = true
			c.OutboundCIDRs = mustCIDRs(t, "10.0.0.0/8,2001:db8::/32")
			c.OutboundExcludeCIDRs = mustCIDRs(t, "10.96.0.0/12").List
			c.OutboundPorts, c.OutboundExcludePorts = []uint16{3306}, []uint16{22, 80}
			c.KubeVirtInterfaces, c.ExcludeInterfaces = []string{"eth1", "eth2"}, []string{"eth9"}
		}, 1},
		{"tproxy", func(c *Config) { c.Mode, c.ExcludeInterfaces = TProxy, []string{"eth9"} }, 2},
		{"ipv6-tproxy", func(c *Config) {
			c.IPv6, c.Mode = true, TProxy
			c.InboundPorts = Ports{List: []uint16{8080, 9090}}
		}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			checkInstallCleanup(t, c, tt.routing)
		})
	}
}

// checkInstallCleanup installs c twice in a fresh namespace, checking the
// second install changes nothing, then cleans up twice, checking the
// namespace is back as it was; wantRouting is how many TPROXY routing
// entries the install adds.
func checkInstallCleanup(t *testing.T, c Config, wantRouting int) {
	t.Helper()
	ns := newNetns(t)
	p := mustBuild(t, c)
	a := &Applier{Netns: ns}
	ctx := context.Background()
	before := saveAll(t, ns)

	if err := a.Install(ctx, p); err != nil {
		t.Fatalf("Install: %v", err)
	}
	once := saveAll(t, ns)
	if once == before || !strings.Contains(once, "-A OUTPUT -j ISTIO_OUTPUT") {
		t.Fatalf("Install left no ISTIO_OUTPUT jump:\n%s", once)
	}
	if got := routing(t, ns, c.TProxyMark, c.TProxyTable); len(got) != wantRouting {
		t.Errorf("after Install, routing = %q; want %d entries", got, wantRouting)
	}
	if err := a.Install(ctx, p); err != nil {
		t.Fatalf("second Install: %v", err)
	}
	if twice := saveAll(t, ns); twice != once {
		t.Errorf("second Install changed iptables-save (-once +twice):\n%s", diff(once, twice))
	}
	if got := routing(t, ns, c.TProxyMark, c.TProxyTable); len(got) != wantRouting {
		t.Errorf("after second Install, routing = %q; want %d entries", got, wantRouting)
	}
	for i := range 2 {
		if err := a.Cleanup(ctx, p); err != nil {
			t.Fatalf("Cleanup #%d: %v", i+1, err)
		}
		if after := saveAll(t, ns); after != before {
			t.Errorf("after Cleanup #%d (-before +after):\n%s", i+1, diff(before, after))
		}
		if got := routing(t, ns, c.TProxyMark, c.TProxyTable); len(got) != 0 {
			t.Errorf("after Cleanup #%d, routing = %q; want none", i+1, got)
		}
	}
}

func TestInstallRulesOrder(t *testing.T) {
	// What iptables-save reads back is the ruleset in order, beside (after)
	// the rules that were there before.
	ns := newNetns(t)
	a := &Applier{Netns: ns}
	if err := a.Install(context.Background(), mustBuild(t, DefaultConfig())); err != nil {
		t.Fatalf("Install: %v", err)
	}
	got := nsRun(t, ns, "iptables", "-t", "nat", "-S", "ISTIO_OUTPUT")
	want := `-N ISTIO_OUTPUT
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
`
	if got != want {
		t.Errorf("ISTIO_OUTPUT (-want +got):\n%s", diff(want, got))
	}
	out := nsRun(t, ns, "iptables", "-t", "nat", "-S", "OUTPUT")
	if !strings.HasSuffix(out, "-A OUTPUT -p udp -m udp --dport 9 -j RETURN\n-A OUTPUT -j ISTIO_OUTPUT\n") {
		t.Errorf("nat OUTPUT = %q; want the existing rule, then the ISTIO_OUTPUT jump", out)
	}
}

func TestInstallFailureLeavesNothing(t *testing.T) {
	// A rule the kernel rejects fails the install; what had been installed
	// is removed again, so the pod is never half-captured.
	ns := newNetns(t)
	a := &Applier{Netns: ns}
	before := saveAll(t, ns)
	p := mustBuild(t, DefaultConfig())
	p.Rulesets = append(p.Rulesets, Ruleset{Family: IPv6, Rules: append(append([]Rule(nil), p.Rulesets[0].Rules...),
		Rule{Table: tableNat, Chain: chainOutput, Spec: []string{"-m", "no-such-match", "-j", "RETURN"}})})
	err := a.Install(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "ip6tables-restore") {
		t.Fatalf("Install = %v; want an ip6tables-restore error", err)
	}
	if after := saveAll(t, ns); after != before {
		t.Errorf("failed Install left rules behind (-before +after):\n%s", diff(before, after))
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := (&Applier{}).Install(context.Background(), mustBuild(t, DefaultConfig()))
	var me *MissingError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "install the iptables package") {
		t.Fatalf("Install with empty PATH = %v; want a MissingError", err)
	}
}

func TestReinstallWithOtherFlagsReplaces(t *testing.T) {
	// Installing over an earlier install refills our chains instead of
	// adding to them, and keeps one jump from each built-in chain.
	ns := newNetns(t)
	a := &Applier{Netns: ns}
	ctx := context.Background()
	if err := a.Install(ctx, mustBuild(t, DefaultConfig())); err != nil {
		t.Fatalf("Install defaults: %v", err)
	}
	c := DefaultConfig()
	c.OutboundCIDRs = mustCIDRs(t, "10.0.0.0/8")
	p := mustBuild(t, c)
	if err := a.Install(ctx, p); err != nil {
		t.Fatalf("Install -i 10.0.0.0/8: %v", err)
	}
	nat := nsRun(t, ns, "iptables-save", "-t", "nat")
	if n := strings.Count(nat, "-A OUTPUT -j ISTIO_OUTPUT\n"); n != 1 {
		t.Errorf("%d ISTIO_OUTPUT jumps; want 1:\n%s", n, nat)
	}
	if !strings.Contains(nat, "-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT\n") || strings.Contains(nat, "-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n") {
		t.Errorf("ISTIO_OUTPUT not replaced by the -i 10.0.0.0/8 rules:\n%s", nat)
	}
	if err := a.Cleanup(ctx, p); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if nat := nsRun(t, ns, "iptables-save", "-t", "nat"); strings.Contains(nat, "ISTIO") {
		t.Errorf("Cleanup left ISTIO state:\n%s", nat)
	}
}
