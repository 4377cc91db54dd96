package deploy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/remora-mesh/remora/internal/testns"
)

// proc is a process started by a test; its output is collected.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	mu   sync.Mutex
	out  strings.Builder
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// output returns what the process wrote so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// expect waits at most d for the process to write want.
func (p *proc) expect(t *testing.T, d time.Duration, want string) {
	t.Helper()
	for deadline := time.Now().Add(d); !strings.Contains(p.output(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v: no %q after %s; output:\n%s", p.cmd.Args, want, d, p.output())
		}
	}
}

// start runs argv with env added, collecting stdout and stderr; it is
// killed when the test ends if still running.
func start(t *testing.T, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// TestVMPath follows the README's "VM with systemd" path in a network
// namespace standing in for the VM: systemd cannot run there, so the test
// runs the units' own ExecStart/ExecStartPost/ExecReload/ExecStop lines by
// hand, as the units' users, with the example config as /etc/remora. An
// app (uid 1000) calls http://reviews:9080 at the ServiceEntry's VIP; the
// rules send it to remora, which routes it to the loopback backends.
func TestVMPath(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace and iptables rules, runs remora as uid 1337")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-save", "setpriv", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (needs iproute2, iptables, util-linux, curl)", bin)
		}
	}
	bin := remora(t)
	ns := newNetns(t)
	nsexec := func(uid int, argv ...string) []string {
		pre := []string{"ip", "netns", "exec", ns}
		if uid != 0 {
			u := strconv.Itoa(uid)
			pre = append(pre, "setpriv", "--reuid", u, "--regid", u, "--clear-groups", "--no-new-privs")
		}
		return append(pre, argv...)
	}
	// /etc/remora is the example config; /usr/local/bin/remora the binary.
	etc := publicDir(t)
	copyDir(t, "systemd/example", etc)
	paths := strings.NewReplacer("/usr/local/bin/remora", bin, "/etc/remora", etc)
	ipt := parseUnit(t, "systemd/remora-iptables.service")
	svc := parseUnit(t, "systemd/remora.service")
	exec1 := func(u unit, key string) []string {
		return argv(paths.Replace(u.get("Service", key)), nil)
	}
	if got := svc.get("Service", "User"); got != "remora" {
		t.Fatalf("remora.service User=%q", got)
	}
	const remoraUID, appUID = 1337, 1000

	// The backends: v1 and v2 of reviews on the VM's loopback.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"127.0.0.1:9081 reviews-v1", "127.0.0.1:9082 reviews-v2"} {
		p := start(t, []string{backendEnv + "=" + b}, nsexec(0, self)...)
		p.expect(t, 5*time.Second, "ready")
	}

	// systemctl start remora: remora-iptables.service first ...
	run(t, nsexec(0, exec1(ipt, "ExecStart")...)...)
	if after := save(t, ns); !strings.Contains(after, "ISTIO_OUTPUT") || !strings.Contains(after, "--dports 22,15090,15021,15020") && !strings.Contains(after, "--dport 22 ") {
		t.Fatalf("rules after ExecStart lack ISTIO_OUTPUT or the port-22 exclusion:\n%s", after)
	}
	// ... then remora.service as uid 1337, active once ExecStartPost is.
	rp := start(t, nil, nsexec(remoraUID, exec1(svc, "ExecStart")...)...)
	post := nsexec(remoraUID, exec1(svc, "ExecStartPost")...)
	if out, err := exec.Command(post[0], post[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("ExecStartPost (remora wait): %v\n%s\nremora:\n%s", err, out, rp.output())
	}

	// The app: curl as uid 1000, reviews resolving to the VIP as the
	// README's /etc/hosts line makes it.
	app := func(header string) string {
		args := []string{"curl", "-sS", "--max-time", "5", "--resolve", "reviews:9080:198.18.0.10", "http://reviews:9080/reviews/0"}
		if header != "" {
			args = append(args, "-H", header)
		}
		argv := nsexec(appUID, args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("app %v: %v\n%s\nremora:\n%s", args, err, out, rp.output())
		}
		return string(out)
	}
	if got, want := app(""), "reviews-v1 /reviews/0"; !strings.HasPrefix(got, want) {
		t.Errorf("app GET reviews = %q; want %q", got, want)
	}
	if got, want := app("end-user: jason"), "reviews-v2 /reviews/0 end-user=jason"; !strings.HasPrefix(got, want) {
		t.Errorf("app GET reviews as jason = %q; want %q", got, want)
	}
	rp.expect(t, 3*time.Second, `outbound|9080|v2|reviews.default.svc.cluster.local`)

	// systemctl reload remora: SIGHUP (ip netns exec and setpriv exec, so
	// the pid is remora's), and it keeps serving.
	if reload := svc.get("Service", "ExecReload"); reload != "/bin/kill -HUP $MAINPID" {
		t.Fatalf("ExecReload = %q", reload)
	}
	if err := rp.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got, want := app(""), "reviews-v1"; !strings.HasPrefix(got, want) {
		t.Errorf("after SIGHUP: app GET reviews = %q; want %q", got, want)
	}

	// systemctl stop remora: SIGTERM, exit 0 within TimeoutStopSec, then
	// remora-iptables.service stops too (PartOf) and cleans up.
	if err := rp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rp.done:
		if code := rp.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("remora exited %d after SIGTERM; want 0\n%s", code, rp.output())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("remora still running 15s (TimeoutStopSec) after SIGTERM")
	}
	for i := 0; i < 2; i++ { // ExecStop twice: cleanup is idempotent
		run(t, nsexec(0, exec1(ipt, "ExecStop")...)...)
	}
	// An empty table may stay behind (iptables creates tables on first
	// use), but no chain or rule of remora's.
	if after := save(t, ns); strings.Contains(after, "ISTIO") {
		t.Errorf("rules after ExecStop still hold remora's:\n%s", after)
	}
}

// newNetns creates the namespace standing for the VM: the VIP
// 198.18.0.10 routes to a veth pair inside it, so nothing can leave it
// (testns.New).
func newNetns(t *testing.T) string {
	t.Helper()
	return testns.New(t, "remora-deploy")
}

func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// save is iptables-save in ns without its timestamped comments.
func save(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(run(t, "ip", "netns", "exec", ns, "iptables-save"), "\n") {
		if !strings.HasPrefix(line, "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// TestExplicitProxy follows the README's "VM, explicit proxy, no root"
// path: `remora run` as an unprivileged user (uid 1000 when the test runs
// as root, else the test's own), on free loopback ports instead of the
// 150xx defaults, no iptables; apps reach it through http_proxy.
func TestExplicitProxy(t *testing.T) {
	bin := remora(t)
	backends := map[string]string{}
	for _, name := range []string{"reviews-v1", "reviews-v2"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: backend(name)}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		backends[name] = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	}
	etc := publicDir(t)
	copyDir(t, "systemd/example", etc, "{http: 9081}", "{http: "+backends["reviews-v1"]+"}", "{http: 9082}", "{http: "+backends["reviews-v2"]+"}")
	p := testns.FreePorts(t, 5)
	outbound, inbound, admin, stats, health := p[0], p[1], p[2], p[3], p[4]
	argv := []string{bin, "run", "--config", etc,
		"--outbound-port", strconv.Itoa(outbound), "--inbound-port", strconv.Itoa(inbound),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", admin), "--stats-addr", fmt.Sprintf("127.0.0.1:%d", stats),
		"--health-addr", fmt.Sprintf("127.0.0.1:%d", health), "--bind-address", "127.0.0.1"}
	wait := []string{bin, "wait", "--timeout", "20s", "--url", fmt.Sprintf("http://127.0.0.1:%d/healthz/ready", health)}
	if os.Getuid() == 0 {
		if _, err := exec.LookPath("setpriv"); err != nil {
			t.Skip("running as root without setpriv: cannot drop to a non-root user")
		}
		pre := []string{"setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups", "--no-new-privs"}
		argv = append(pre, argv...)
		wait = append(pre, wait...)
	}
	rp := start(t, nil, argv...)
	if out, err := exec.Command(wait[0], wait[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("remora wait: %v\n%s\nremora:\n%s", err, out, rp.output())
	}
	proxy := fmt.Sprintf("http://127.0.0.1:%d", outbound)

	// A Go app: HTTP_PROXY, as net/http reads it.
	u, _ := url.Parse(proxy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}, Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", "http://reviews:9080/reviews/1", nil)
	req.Header.Set("end-user", "jason")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET through %s: %v\nremora:\n%s", proxy, err, rp.output())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "reviews-v2 /reviews/1 end-user=jason"; resp.StatusCode != 200 || !strings.HasPrefix(string(body), want) {
		t.Errorf("Go client as jason: %d %q; want 200 %q", resp.StatusCode, body, want)
	}

	// curl: http_proxy (curl reads only the lower-case name for http).
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not installed: only the Go client was checked")
		return
	}
	cmd := exec.Command("curl", "-sS", "--max-time", "5", "http://reviews:9080/reviews/0")
	cmd.Env = append(os.Environ(), "http_proxy="+proxy, "HTTP_PROXY="+proxy, "no_proxy=")
	out, err := cmd.CombinedOutput()
	if want := "reviews-v1 /reviews/0"; err != nil || !strings.HasPrefix(string(out), want) {
		t.Errorf("http_proxy=%s curl http://reviews:9080/reviews/0 = %q, %v; want %q\nremora:\n%s", proxy, out, err, want, rp.output())
	}
}

// Ensure the example's backend ports are what the replacements above
// expect, so TestExplicitProxy cannot silently test the wrong file.
func TestExamplePorts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("systemd/example", "reviews.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"{http: 9081}", "{http: 9082}", "addresses: [198.18.0.10]"} {
		if !strings.Contains(string(data), s) {
			t.Errorf("systemd/example/reviews.yaml lacks %q", s)
		}
	}
}
