package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unit is a parsed systemd unit file: section -> key -> values, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, "\\") {
				t.Fatalf("%s:%d: %q: want Key=Value inside a section (no continuations)", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// get returns the key's last value, as systemd reads single-value keys.
func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// argv splits an Exec line on spaces (the units use no quoting) and
// expands $VARS from env as systemd does for unquoted $VAR: an unset
// variable is no word at all.
func argv(line string, env map[string]string) []string {
	var out []string
	for _, w := range strings.Fields(line) {
		if name, ok := strings.CutPrefix(w, "$"); ok {
			out = append(out, strings.Fields(env[name])...)
			continue
		}
		out = append(out, w)
	}
	return out
}

// TestUnits checks the keys the README and the issue promise.
func TestUnits(t *testing.T) {
	ipt := parseUnit(t, "systemd/remora-iptables.service")
	rem := parseUnit(t, "systemd/remora.service")
	checks := []struct {
		u                 unit
		name, sec, key    string
		want              string
		contains, missing bool
	}{
		{ipt, "remora-iptables", "Service", "Type", "oneshot", false, false},
		{ipt, "remora-iptables", "Service", "RemainAfterExit", "yes", false, false},
		{ipt, "remora-iptables", "Service", "ExecStart", "/usr/local/bin/remora iptables ", true, false},
		{ipt, "remora-iptables", "Service", "ExecStop", "/usr/local/bin/remora iptables --cleanup ", true, false},
		{ipt, "remora-iptables", "Unit", "Before", "remora.service", false, false},
		{rem, "remora", "Service", "User", "remora", false, false},
		{rem, "remora", "Service", "ExecStart", "/usr/local/bin/remora run --config /etc/remora", false, false},
		{rem, "remora", "Service", "ExecReload", "/bin/kill -HUP $MAINPID", false, false},
		{rem, "remora", "Service", "Restart", "on-failure", false, false},
		{rem, "remora", "Unit", "Requires", "remora-iptables.service", false, false},
		{rem, "remora", "Unit", "After", "remora-iptables.service", true, false},
		{rem, "remora", "Service", "NoNewPrivileges", "yes", false, false},
		{rem, "remora", "Service", "ProtectSystem", "strict", false, false},
		{rem, "remora", "Service", "PrivateTmp", "yes", false, false},
		{rem, "remora", "Service", "ReadOnlyPaths", "/etc/remora", true, false},
		// REDIRECT needs no capability: none in the main unit.
		{rem, "remora", "Service", "AmbientCapabilities", "", false, false},
		{rem, "remora", "Service", "CapabilityBoundingSet", "", false, false},
	}
	for _, c := range checks {
		got := c.u.get(c.sec, c.key)
		if _, set := c.u[c.sec][c.key]; !set || c.contains && !strings.Contains(got, c.want) || !c.contains && got != c.want {
			t.Errorf("%s.service [%s] %s=%q; want %q", c.name, c.sec, c.key, got, c.want)
		}
	}
	// The TPROXY drop-ins are the only place a capability is granted.
	drop := parseUnit(t, "systemd/tproxy/remora.service.d/tproxy.conf")
	if got := drop.get("Service", "AmbientCapabilities"); got != "CAP_NET_ADMIN" {
		t.Errorf("tproxy drop-in AmbientCapabilities=%q; want CAP_NET_ADMIN", got)
	}
	iptDrop := parseUnit(t, "systemd/tproxy/remora-iptables.service.d/tproxy.conf")
	for _, key := range []string{"ExecStart", "ExecStop"} {
		if v := iptDrop["Service"][key]; len(v) != 2 || v[0] != "" || !slices.Contains(argv(v[1], nil), "TPROXY") {
			t.Errorf("tproxy iptables drop-in %s=%q; want a reset, then a TPROXY command", key, v)
		}
	}
	// Install and cleanup take the same flags, so cleanup removes exactly
	// what was installed.
	for _, u := range []unit{ipt, iptDrop} {
		start := argv(u.get("Service", "ExecStart"), nil)
		stop := slices.DeleteFunc(argv(u.get("Service", "ExecStop"), nil), func(s string) bool { return s == "--cleanup" })
		if !slices.Equal(start, stop) {
			t.Errorf("ExecStart %q and ExecStop %q (without --cleanup) differ", start, stop)
		}
	}
	// The user the unit runs as is uid 1337, which the rules exempt.
	sys, err := os.ReadFile("systemd/sysusers-remora.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sys), "\nu remora 1337 ") {
		t.Errorf("sysusers-remora.conf does not create remora as uid 1337:\n%s", sys)
	}
}

// TestSystemdAnalyze runs `systemd-analyze verify` on the units (with
// ExecStart pointing at a built binary, since verify checks that
// executables exist) and `systemd-analyze security --offline` on
// remora.service. Any diagnostic at all fails the test.
func TestSystemdAnalyze(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd): only TestUnits's checks ran")
	}
	bin := remora(t)
	// plain: the two units as shipped; tproxy: with the TPROXY drop-ins,
	// which verify loads from <unit>.d beside each unit.
	plain, tproxy := t.TempDir(), t.TempDir()
	for _, dir := range []string{plain, tproxy} {
		copyDir(t, "systemd", dir, "/usr/local/bin/remora", bin)
	}
	for _, d := range []string{"remora.service.d", "remora-iptables.service.d"} {
		if err := os.MkdirAll(filepath.Join(tproxy, d), 0o755); err != nil {
			t.Fatal(err)
		}
		copyDir(t, filepath.Join("systemd/tproxy", d), filepath.Join(tproxy, d), "/usr/local/bin/remora", bin)
	}
	for _, dir := range []string{plain, tproxy} {
		cmd := exec.Command("systemd-analyze", "verify", filepath.Join(dir, "remora-iptables.service"), filepath.Join(dir, "remora.service"))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify (%s): %v\n%s", dir, err, out)
		}
	}
	units := []string{filepath.Join(plain, "remora-iptables.service"), filepath.Join(plain, "remora.service")}
	// Exposure 0 (locked down) to 10 (unsafe); "OK" is below 5.
	cmd := exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=30", units[1])
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "unrecognized option") {
		t.Logf("systemd-analyze security --offline unsupported by this systemd: %s", out)
		return
	}
	if err != nil {
		t.Errorf("systemd-analyze security remora.service: exposure above 3.0 or error: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("systemd-analyze security: %s", lines[len(lines)-1])
}
