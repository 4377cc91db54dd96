package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remora-mesh/remora/internal/testns"
)

// needRoot skips unless the test can create namespaces and iptables rules.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace, iptables rules, and runs processes as uid 1337 and 1000")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-save", "ip6tables", "ip6tables-save", "setpriv"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (needs iproute2, iptables, util-linux)", bin)
		}
	}
}

// newNetns creates a namespace remora-e2e-<random> with lo up and a veth
// pair whose both ends stay inside it: veth0 holds 198.18.0.1/15 and
// fd00:198:18::1/64, so the test VIPs route to it and nothing can leave
// the namespace even if interception fails (newPeer may then move veth1
// into a second namespace the test also owns). The namespace is deleted
// when the test ends, after the processes started in it are killed
// (cleanups run last-in first-out).
func newNetns(t *testing.T) string {
	t.Helper()
	ns := testns.New(t, "remora-e2e")
	// Someone else's rules in every table remora touches: cleanup must
	// leave them, and iptables-save has the tables to compare.
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, tc := range [][2]string{{"nat", "OUTPUT"}, {"nat", "PREROUTING"}, {"mangle", "OUTPUT"}, {"mangle", "PREROUTING"}} {
			run(t, "ip", "netns", "exec", ns, tool, "-t", tc[0], "-A", tc[1], "-p", "udp", "--dport", "9", "-j", "RETURN")
		}
	}
	return ns
}

// newPeer creates a second namespace standing for another pod: veth1
// moves into it with 198.18.0.2/15 and fd00:198:18::2/64, so connections
// from it reach ns from outside, through PREROUTING (inbound capture).
func newPeer(t *testing.T, ns string) string {
	t.Helper()
	peer := ns + "-peer"
	run(t, "ip", "netns", "add", peer)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", peer).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", peer, err, out)
		}
	})
	run(t, "ip", "-n", ns, "link", "set", "veth1", "netns", peer)
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "set", "veth1", "up"},
		{"addr", "add", "198.18.0.2/15", "dev", "veth1"},
		{"-6", "addr", "add", "fd00:198:18::2/64", "dev", "veth1", "nodad"},
	} {
		run(t, "ip", append([]string{"-n", peer}, args...)...)
	}
	return peer
}

// run runs a command and returns its output, failing the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNetns returns the argv prefix that runs a command inside ns as uid
// (0: root), with caps as ambient capabilities ("+net_admin").
func inNetns(ns string, uid int, caps string, argv ...string) []string {
	pre := []string{"ip", "netns", "exec", ns}
	if uid != 0 {
		u := strconv.Itoa(uid)
		pre = append(pre, "setpriv", "--reuid", u, "--regid", u, "--clear-groups")
		if caps != "" {
			pre = append(pre, "--inh-caps", caps, "--ambient-caps", caps)
		}
	}
	return append(pre, argv...)
}

// saveAll is iptables-save and ip6tables-save in ns, without the
// timestamped comments.
func saveAll(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		for _, line := range strings.Split(run(t, "ip", "netns", "exec", ns, tool), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// proc is a process started for a test; its output is collected.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	out  bytes.Buffer
}

// wait waits at most d for the process to exit and returns its exit
// code, or -1 if it is still running.
func (p *proc) wait(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns what the process wrote so far.
func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs argv with env added, collecting stdout and stderr; the
// process is killed when the test ends if it is still running.
func start(t *testing.T, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		stdin.Close()
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitFor polls cond every 20ms for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// publicDir makes a directory every uid can read and enter (t.TempDir is
// 0700, which uid 1337 and 1000 cannot use).
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "remora-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyExecutable copies the running test binary into dir so other uids
// can execute it.
func copyExecutable(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "e2e.test")
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
