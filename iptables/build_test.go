package iptables

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func mustCIDRs(t *testing.T, s string) CIDRs {
	t.Helper()
	c, err := ParseCIDRs(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustPorts(t *testing.T, s string) []uint16 {
	t.Helper()
	p, err := ParsePortList(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// goldenCases are the dry-run scenarios, one testdata/<name>.golden each;
// each edits DefaultConfig (the injector's flags) as the named flags would.
func goldenCases(t *testing.T) []struct {
	name string
	edit func(c *Config)
} {
	return []struct {
		name string
		edit func(c *Config)
	}{
		{"defaults", func(c *Config) {}},
		{"inbound-ports", func(c *Config) { c.InboundPorts = Ports{List: []uint16{4000, 5000}} }},
		{"inbound-none", func(c *Config) { c.InboundPorts = Ports{} }},
		{"inbound-wildcard-no-exclude", func(c *Config) { c.InboundExcludePorts = nil }},
		{"outbound-cidrs", func(c *Config) { c.OutboundCIDRs = mustCIDRs(t, "10.0.0.0/8,172.16.0.0/12") }},
		{"outbound-none", func(c *Config) { c.OutboundCIDRs = CIDRs{} }},
		{"exclude-cidrs", func(c *Config) {
			c.OutboundExcludeCIDRs = mustCIDRs(t, "10.96.0.0/12,169.254.169.254").List
		}},
		{"outbound-ports-include", func(c *Config) {
			c.OutboundCIDRs = CIDRs{}
			c.OutboundPorts = mustPorts(t, "32000,31000")
		}},
		{"outbound-ports-exclude", func(c *Config) { c.OutboundExcludePorts = mustPorts(t, "22,80,443") }},
		{"loopback-include", func(c *Config) {
			c.OutboundCIDRs = mustCIDRs(t, "127.1.2.3")
			c.ProxyUIDs, c.ProxyGIDs = []string{"3", "4"}, []string{"1", "2"}
		}},
		{"uid-gid", func(c *Config) { c.ProxyUIDs, c.ProxyGIDs = []string{"1000"}, []string{"2000"} }},
		{"custom-ports", func(c *Config) {
			c.OutboundPort, c.InboundPort, c.TunnelPort = 16001, 16006, 16008
		}},
		{"kube-virt-interfaces", func(c *Config) { c.KubeVirtInterfaces = []string{"eth1", "eth2"} }},
		{"kube-virt-cidrs", func(c *Config) {
			c.KubeVirtInterfaces = []string{"eth1"}
			c.OutboundCIDRs = mustCIDRs(t, "10.0.0.0/8")
		}},
		{"exclude-interfaces", func(c *Config) { c.ExcludeInterfaces = []string{"eth9"} }},
		{"tproxy", func(c *Config) { c.Mode = TProxy }},
		{"tproxy-inbound-ports", func(c *Config) {
			c.Mode = TProxy
			c.InboundPorts = Ports{List: []uint16{32000, 31000}}
		}},
		{"tproxy-exclude-interfaces", func(c *Config) {
			c.Mode = TProxy
			c.ExcludeInterfaces = []string{"not-istio-nic"}
			c.OutboundCIDRs = mustCIDRs(t, "9.9.0.0/16")
			c.OutboundExcludeCIDRs = mustCIDRs(t, "1.1.0.0/16").List
		}},
		{"tproxy-mark-table", func(c *Config) { c.Mode, c.TProxyMark, c.TProxyTable = TProxy, 7, 70 }},
		{"ipv6", func(c *Config) { c.IPv6 = true }},
		{"ipv6-cidrs", func(c *Config) {
			c.IPv6 = true
			c.OutboundCIDRs = mustCIDRs(t, "10.0.0.0/8,2001:db8::/32")
			c.OutboundExcludeCIDRs = mustCIDRs(t, "10.96.0.0/12,2001:db8:1::/48").List
		}},
		{"ipv6-tproxy", func(c *Config) { c.IPv6, c.Mode = true, TProxy }},
	}
}

func TestBuildGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, tt := range goldenCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			p, err := Build(c)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			got := p.Save()
			if again := mustBuild(t, c).Save(); again != got {
				t.Errorf("Build is not deterministic:\n%s", diff(got, again))
			}
			checkGolden(t, tt.name, got)
		})
		seen[tt.name+".golden"] = true
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no test case; delete it", f)
		}
	}
}

func mustBuild(t *testing.T, c Config) Plan {
	t.Helper()
	p, err := Build(c)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p
}

// checkGolden compares got with testdata/<name>.golden, rewriting it
// under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./iptables -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s mismatch (-want +got; go test ./iptables -update rewrites it):\n%s", path, diff(string(want), got))
	}
}

// diff returns a line diff of a and b: "-" lines only in a, "+" only in b.
func diff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j] is the longest common subsequence of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			fmt.Fprintf(&out, "  %s\n", x[i])
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&out, "+ %s\n", y[j])
			j++
		default:
			fmt.Fprintf(&out, "- %s\n", x[i])
			i++
		}
	}
	return out.String()
}

func TestDefaultsMatchResearchRuleset(t *testing.T) {
	// The injector's ruleset, istio-iptables' inbound-ports-wildcard
	// golden plus -i '*' and -d 15090,15021,15020, in iptables-save form.
	want := `*nat
:ISTIO_INBOUND - [0:0]
:ISTIO_REDIRECT - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
`
	p := mustBuild(t, DefaultConfig())
	if got := p.Rulesets[0].Save(); got != want {
		t.Errorf("default ruleset differs (-want +got):\n%s", diff(want, got))
	}
	if len(p.Rulesets) != 1 || len(p.Routes) != 0 || len(p.LoopbackAddrs) != 0 {
		t.Errorf("default plan = %d rulesets, %d routes, %d addrs; want IPv4 rules only",
			len(p.Rulesets), len(p.Routes), len(p.LoopbackAddrs))
	}
}

func TestBuildZeroConfigUsesDefaults(t *testing.T) {
	// Zero ports, uids, mode and marks mean istio-iptables' defaults; the
	// zero capture sets mean no capture, as in istio-iptables.
	got := mustBuild(t, Config{}).Save()
	for _, want := range []string{"--to-ports 15001", "--to-ports 15006", "--dport 15008", "--uid-owner 1337", "--gid-owner 1337"} {
		if !strings.Contains(got, want) {
			t.Errorf("Build(Config{}) lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"-A PREROUTING", "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("Build(Config{}) has %q, want no capture:\n%s", unwanted, got)
		}
	}
}

func TestBuildInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"mode", func(c *Config) { c.Mode = "NAT" }, `interception mode "NAT"`},
		{"uid", func(c *Config) { c.ProxyUIDs = []string{"13 37"} }, `proxy uid/gid "13 37"`},
		{"interface", func(c *Config) { c.ExcludeInterfaces = []string{"eth0;reboot"} }, `interface "eth0;reboot"`},
		{"long interface", func(c *Config) { c.KubeVirtInterfaces = []string{"abcdefghijklmnop"} }, "interface"},
		{"port zero", func(c *Config) { c.OutboundPorts = []uint16{0} }, "port 0"},
		{"bad prefix", func(c *Config) { c.OutboundExcludeCIDRs = []netip.Prefix{{}} }, "not a valid CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			_, err := Build(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		parse    func(string) (string, error)
		want     string
		wantErr  bool
	}{
		{"ports wildcard", "*", ports, "all", false},
		{"ports empty", "", ports, "[]", false},
		{"ports list", "80, 443,,8080", ports, "[80 443 8080]", false},
		{"ports bad", "80,http", ports, "", true},
		{"ports zero", "0", ports, "", true},
		{"ports too big", "65536", ports, "", true},
		{"cidrs wildcard", "*", cidrs, "all", false},
		{"cidrs empty", " ", cidrs, "[]", false},
		{"cidrs masked", "10.1.2.3/8,192.168.0.1,2001:db8::1/32,::1", cidrs, "[10.0.0.0/8 192.168.0.1/32 2001:db8::/32 ::1/128]", false},
		{"cidrs bad", "10.0.0.0/33", cidrs, "", true},
		{"cidrs wildcard in list", "10.0.0.0/8,*", cidrs, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parse(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func ports(s string) (string, error) {
	p, err := ParsePorts(s)
	if err != nil {
		return "", err
	}
	if p.All {
		return "all", nil
	}
	return fmt.Sprint(p.List), nil
}

func cidrs(s string) (string, error) {
	c, err := ParseCIDRs(s)
	if err != nil {
		return "", err
	}
	if c.All {
		return "all", nil
	}
	return fmt.Sprint(c.List), nil
}
