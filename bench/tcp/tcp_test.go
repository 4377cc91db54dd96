package tcp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/remora-mesh/remora/bench/internal/tcpbulk"
	"github.com/remora-mesh/remora/internal/testns"
)

const (
	helperEnv = "REMORA_BENCH_HELPER"
	chunk     = 1 << 20 // bytes per benchmark iteration
	vip       = tcpbulk.VIP
	health    = "127.0.0.1:25021"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "goproxy" {
		os.Exit(goProxy(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// goProxy runs tcpbulk.Proxy, the plain Go proxy, on
// $REMORA_BENCH_LISTEN (default 127.0.0.1:0).
func goProxy(target string) int {
	addr := os.Getenv("REMORA_BENCH_LISTEN")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr())
	go func() { io.Copy(io.Discard, os.Stdin); os.Exit(0) }()
	tcpbulk.Proxy(ln, target)
	return 1
}

// world is where the benchmark runs: a namespace (root) or the host.
type world struct {
	ns   string // "" on the host
	dir  string
	sink string // address of the discard server
}

// inNS runs fn on a thread inside the namespace (sockets it creates stay
// there).
func (w *world) inNS(fn func() error) error {
	if w.ns == "" {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	h, err := netns.GetFromName(w.ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return err
	}
	defer netns.Set(orig)
	return fn()
}

func (w *world) dial(addr string) (net.Conn, error) {
	var c net.Conn
	err := w.inNS(func() (err error) { c, err = net.DialTimeout("tcp", addr, 5*time.Second); return })
	return c, err
}

func (w *world) cmd(uid int, caps bool, argv ...string) *exec.Cmd {
	if w.ns != "" {
		pre := []string{"ip", "netns", "exec", w.ns}
		if uid != 0 {
			u := strconv.Itoa(uid)
			pre = append(pre, "setpriv", "--reuid", u, "--regid", u, "--clear-groups")
		}
		argv = append(pre, argv...)
	}
	return exec.Command(argv[0], argv[1:]...)
}

// setup creates the world once for all cases.
func setup(b *testing.B) *world {
	b.Helper()
	dir, err := os.MkdirTemp("", "remora-bench-")
	if err != nil {
		b.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	b.Cleanup(func() { os.RemoveAll(dir) })
	w := &world{dir: dir}
	if os.Getuid() == 0 && lookPaths("ip", "iptables", "setpriv") {
		w.ns = testns.New(b, "remora-bench")
	}
	var ln net.Listener
	if err := w.inNS(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	w.sink = ln.Addr().String()
	go tcpbulk.Sink(ln)
	return w
}

func lookPaths(names ...string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return false
		}
	}
	return true
}

func mustRun(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// transfer sends n bytes over one connection to addr and waits for the
// sink to confirm them.
func transfer(b *testing.B, w *world, addr string, n int64) time.Duration {
	c, err := w.dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	el, err := tcpbulk.Send(c.(*net.TCPConn), n)
	if err != nil {
		b.Fatal(err)
	}
	return el
}

func measure(b *testing.B, w *world, addr string, pid int) {
	n := int64(b.N) * chunk
	b.SetBytes(chunk)
	u0, s0 := tcpbulk.CPUTimes(pid)
	b.ResetTimer()
	el := transfer(b, w, addr, n)
	b.StopTimer()
	u1, s1 := tcpbulk.CPUTimes(pid)
	mibps, cpu := tcpbulk.Rate(n, el, u1-u0+s1-s0)
	_, user := tcpbulk.Rate(n, el, u1-u0)
	b.ReportMetric(mibps, "MiB/s")
	b.ReportMetric(cpu, "proxy-cpu-s/GiB")
	b.ReportMetric(user, "user-s/GiB")
}

func BenchmarkTCPBulk(b *testing.B) {
	w := setup(b)
	b.Cleanup(func() { cleanupRemora() })
	// direct and goproxy run before the capture rules exist (no
	// conntrack); goproxy-captured and remora after, through the same
	// REDIRECT and conntrack, so compare remora with goproxy-captured.
	b.Run("direct", func(b *testing.B) { measure(b, w, w.sink, 0) })
	b.Run("goproxy", func(b *testing.B) {
		addr, pid := startGoProxy(b, w, 0, "")
		measure(b, w, addr, pid)
	})
	if w.ns != "" {
		// The plain proxy on the capture port, as uid 1337, reached through
		// the same REDIRECT as remora: the kernel's NAT and conntrack work
		// on the captured leg is then charged to both alike.
		captureRules(b, w)
		b.Run("goproxy-captured", func(b *testing.B) {
			_, pid := startGoProxy(b, w, 1337, ":15001")
			measure(b, w, vip, pid)
		})
		startRemora(b, w)
	}
	b.Run("remora", func(b *testing.B) {
		if w.ns == "" {
			b.Skip("needs root: remora forwards captured connections, which needs iptables in a namespace")
		}
		pid := startRemora(b, w)
		measure(b, w, vip, pid)
	})
}

func startGoProxy(b *testing.B, w *world, uid int, listen string) (string, int) {
	b.Helper()
	self, _ := os.Executable()
	cmd := w.cmd(uid, false, self, w.sink)
	cmd.Env = append(os.Environ(), helperEnv+"=goproxy", "REMORA_BENCH_LISTEN="+listen)
	out, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("go proxy: %v", err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid
}

var remoraPID int

// startRemora starts `remora run` in the captured namespace once (later
// calls of the sub-benchmark reuse it).
func startRemora(b *testing.B, w *world) int {
	b.Helper()
	if remoraPID != 0 {
		return remoraPID
	}
	bin, cfg := captureRules(b, w)
	cmd := w.cmd(1337, false, bin, "run", "--config", cfg, "--admin-addr", "127.0.0.1:25000",
		"--stats-addr", "127.0.0.1:25090", "--health-addr", health, "--log-level", "warn", "--access-log", "off")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// Killed by BenchmarkTCPBulk's cleanup: it outlives this run.
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	cleanupRemora = func() { cmd.Process.Kill(); <-exited }
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return w.dial(addr) }}}
	for i := 0; ; i++ {
		if resp, err := hc.Get("http://" + health + "/healthz/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 100 {
			b.Fatal("remora not ready after 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	remoraPID = cmd.Process.Pid
	return remoraPID
}

var cleanupRemora = func() {}

var captured struct{ bin, cfg string }

// captureRules builds remora, writes its config and installs the capture
// rules in the namespace, once.
func captureRules(b *testing.B, w *world) (bin, cfg string) {
	b.Helper()
	if captured.bin != "" {
		return captured.bin, captured.cfg
	}
	bin = filepath.Join(w.dir, "remora")
	mustRun(b, "go", "build", "-o", bin, "github.com/remora-mesh/remora/cmd/remora")
	_, port, _ := net.SplitHostPort(w.sink)
	cfg = filepath.Join(w.dir, "config")
	os.Mkdir(cfg, 0o755)
	if err := os.WriteFile(filepath.Join(cfg, "se.yaml"), []byte(tcpbulk.ServiceEntry(port)), 0o644); err != nil {
		b.Fatal(err)
	}
	mustRun(b, bin, "iptables", "--netns", w.ns)
	captured.bin, captured.cfg = bin, cfg
	return bin, cfg
}
