package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/remora-mesh/remora/iptables"
)

func TestIptablesDryRunDefaultsAreInjectorDefaults(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cmdIptables([]string{"--dry-run"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	p, err := iptables.Build(iptables.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), p.Save(); got != want {
		t.Errorf("remora iptables --dry-run =\n%s\nwant iptables.DefaultConfig()'s rules:\n%s", got, want)
	}
}

func TestIptablesFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     []string
		notWant  []string
		wantCode int
	}{
		{"short names", []string{"-n", "-p", "16001", "-z", "16006", "-u", "1000", "-b", "8080", "-i", "10.0.0.0/8"}, nil,
			[]string{"--to-ports 16001", "--to-ports 16006", "--uid-owner 1000", "--gid-owner 1000", "--dport 8080 -j ISTIO_IN_REDIRECT", "-d 10.0.0.0/8 -j ISTIO_REDIRECT"},
			[]string{"15090"}, 0},
		{"long names", []string{"--dry-run", "--envoy-port=16001", "--istio-inbound-interception-mode=TPROXY", "--dual-stack"}, nil,
			[]string{"--to-ports 16001", "*mangle", "# ip6tables-restore --noflush", "# ip -6 rule add fwmark 1337 lookup 133"}, nil, 0},
		{"no capture", []string{"-n", "-b", "", "-i", ""}, nil, nil, []string{"-A PREROUTING", "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"}, 0},
		{"env", []string{"-n"}, map[string]string{"REMORA_ENVOY_PORT": "17001", "REMORA_IPV6": "true"},
			[]string{"--to-ports 17001", "ip6tables-restore"}, nil, 0},
		{"flag beats env", []string{"-n", "-p", "16001"}, map[string]string{"REMORA_ENVOY_PORT": "17001"},
			[]string{"--to-ports 16001"}, []string{"17001"}, 0},
		{"bad port", []string{"-n", "-d", "http"}, nil, nil, nil, 2},
		{"bad cidr", []string{"-n", "-x", "10.0.0.0/40"}, nil, nil, nil, 2},
		{"bad mode", []string{"-n", "-m", "NAT"}, nil, nil, nil, 2},
		{"stray argument", []string{"-n", "extra"}, nil, nil, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			out, code := runIptablesCmd(t, tt.args, lookup)
			if code != tt.wantCode {
				t.Fatalf("exit %d; want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

// runIptablesCmd runs the iptables subcommand's flag handling and dry run
// with env looked up by lookup; it returns stdout+stderr and the exit code.
func runIptablesCmd(t *testing.T, args []string, lookup func(string) (string, bool)) (string, int) {
	t.Helper()
	var b bytes.Buffer
	fs := newFlags("iptables", io.Discard)
	var f iptablesFlags
	f.register(fs)
	if err := parseIptablesFlags(fs, args, f.aliases, lookup); err != nil {
		return err.Error(), 2
	}
	c, err := f.config()
	if err != nil {
		return err.Error(), 2
	}
	p, err := iptables.Build(c)
	if err != nil {
		return err.Error(), 2
	}
	b.WriteString(p.Save())
	return b.String(), 0
}

func TestIptablesHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cmdIptables([]string{"-h"}, &out, &errb); code != 0 {
		t.Errorf("-h exit %d; want 0", code)
	}
	for _, w := range []string{"-p", "envoy-port", "-dry-run", "-cleanup"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("usage lacks %q", w)
		}
	}
	if code := cmdIptables([]string{"--no-such-flag"}, &out, &errb); code != 2 {
		t.Errorf("unknown flag exit %d; want 2", code)
	}
}

func TestIptablesInstallCleanupInNetns(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace and iptables rules")
	}
	for _, bin := range []string{"ip", "iptables-save", "iptables-restore", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed: apt-get install iptables iproute2", bin)
		}
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "remora-ipt-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	save := func() string {
		out, err := exec.Command("ip", "netns", "exec", ns, "iptables-save", "-t", "nat").Output()
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(l, "#") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	steps := []struct {
		args    []string
		wantJmp bool
	}{
		{[]string{"--netns", ns}, true},
		{[]string{"--netns", ns}, true},
		{[]string{"--netns", ns, "--cleanup"}, false},
		{[]string{"--netns", ns, "--cleanup"}, false},
	}
	var installed string
	for i, s := range steps {
		var out, errb bytes.Buffer
		if code := cmdIptables(s.args, &out, &errb); code != 0 {
			t.Fatalf("step %d %v: exit %d: %s", i, s.args, code, errb.String())
		}
		got := save()
		if has := strings.Contains(got, "-A OUTPUT -j ISTIO_OUTPUT"); has != s.wantJmp {
			t.Errorf("step %d %v: ISTIO_OUTPUT jump present = %v; want %v:\n%s", i, s.args, has, s.wantJmp, got)
		}
		if i == 1 && got != installed {
			t.Errorf("second install changed the rules:\n%s\nwant\n%s", got, installed)
		}
		installed = got
	}
}
