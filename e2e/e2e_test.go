package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	os.Exit(m.Run())
}

// The registry: an HTTP VIP, a TCP VIP, an undeclared (sniffed) port
// whose backend speaks first, and VIPs whose endpoint is this pod's own
// address (the app → VIP → own pod hairpin that must go through 15006).
const e2eConfig = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin}
spec:
  hosts: [httpbin.e2e.test]
  addresses: [198.18.0.10, "fd00:198:18::10"]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8000}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo}
spec:
  hosts: [echo.e2e.test]
  addresses: [198.18.0.11, "fd00:198:18::11"]
  ports: [{number: 9000, name: tcp, protocol: TCP, targetPort: 9001}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: smtp}
spec:
  hosts: [smtp.e2e.test]
  addresses: [198.18.0.12, "fd00:198:18::12"]
  ports: [{number: 2525, name: smtp, targetPort: 2526}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: self}
spec:
  hosts: [self.e2e.test]
  addresses: [198.18.0.13]
  ports: [{number: 7000, name: tcp, protocol: TCP, targetPort: 7001}]
  resolution: STATIC
  endpoints: [{address: 198.18.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: self6}
spec:
  hosts: [self6.e2e.test]
  addresses: ["fd00:198:18::13"]
  ports: [{number: 7000, name: tcp, protocol: TCP, targetPort: 7001}]
  resolution: STATIC
  endpoints: [{address: "fd00:198:18::1"}]
`

// Ports remora serves besides 15001/15006, away from the defaults.
const (
	adminAddr  = "127.0.0.1:25000"
	statsAddr  = "127.0.0.1:25090"
	healthAddr = "127.0.0.1:25021"
)

// binaries are built once per test run.
var (
	buildOnce sync.Once
	buildDir  string
	remoraBin string
	helperBin string
	buildErr  error
)

func build(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "remora-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		os.Chmod(dir, 0o755)
		buildDir = dir
		remoraBin = filepath.Join(dir, "remora")
		out, err := exec.Command("go", "build", "-o", remoraBin, "github.com/remora-mesh/remora/cmd/remora").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		helperBin = copyExecutable(t, dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// env is one namespace with backends, rules and a running remora.
type env struct {
	// ns is the pod; peer another pod whose connections arrive inbound.
	ns, peer, mode string
	remora         *proc
	servers        *proc
	before         string
}

// setup creates the namespace, starts the backends, installs the rules
// for mode and starts remora as uid 1337 (with CAP_NET_ADMIN for TPROXY,
// which IP_TRANSPARENT on the inbound listener needs), and waits until it
// is ready.
func setup(t *testing.T, mode string) *env {
	needRoot(t)
	build(t)
	e := &env{ns: newNetns(t), mode: mode}
	e.peer = newPeer(t, e.ns)
	cfg := publicDir(t)
	if err := os.WriteFile(filepath.Join(cfg, "registry.yaml"), []byte(e2eConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	e.before = saveAll(t, e.ns)
	e.servers = start(t, []string{helperEnv + "=servers"}, inNetns(e.ns, 0, "", helperBin)...)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(e.servers.Output(), "ready\n") }) {
		t.Fatalf("backends not ready: %s", e.servers.Output())
	}
	e.iptables(t, false)
	caps := ""
	if mode == "TPROXY" {
		caps = "+net_admin"
	}
	e.remora = start(t, nil, inNetns(e.ns, 1337, caps, remoraBin, "run", "--config", cfg,
		"--admin-addr", adminAddr, "--stats-addr", statsAddr, "--health-addr", healthAddr,
		"--log-level", "debug", "--access-log", "off", "--drain-duration", "1s")...)
	if r := e.client(t, op{Op: "ready", URL: "http://" + healthAddr + "/healthz/ready"}); r[0].Err != "" {
		t.Fatalf("remora not ready: %s\n%s", r[0].Err, e.remora.Output())
	}
	return e
}

// iptables runs `remora iptables` (or its cleanup) in the namespace,
// dual-stack.
func (e *env) iptables(t *testing.T, cleanup bool) {
	t.Helper()
	args := []string{"iptables", "--netns", e.ns, "-m", e.mode, "--ipv6"}
	if cleanup {
		args = append(args, "--cleanup")
	}
	run(t, remoraBin, args...)
}

// client runs ops as uid 1000 inside the pod's namespace.
func (e *env) client(t *testing.T, ops ...op) []result {
	t.Helper()
	return e.clientIn(t, e.ns, ops...)
}

// clientIn runs ops as uid 1000 inside namespace ns.
func (e *env) clientIn(t *testing.T, ns string, ops ...op) []result {
	t.Helper()
	js, _ := json.Marshal(ops)
	argv := inNetns(ns, 1000, "", helperBin, string(js))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"=client")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out)
	}
	var rs []result
	if err := json.Unmarshal(out, &rs); err != nil || len(rs) != len(ops) {
		t.Fatalf("client output %q: %v", out, err)
	}
	return rs
}

// stop sends SIGTERM to remora and checks it exits 0 in time.
func (e *env) stop(t *testing.T) {
	t.Helper()
	e.remora.cmd.Process.Signal(syscall.SIGTERM)
	switch code := e.remora.wait(5 * time.Second); code {
	case 0:
	case -1:
		t.Errorf("remora still running 5s after SIGTERM")
	default:
		t.Errorf("remora exit code %d after SIGTERM; want 0\n%s", code, e.remora.Output())
	}
}

// logCount counts remora's JSON log lines with msg and every field of
// want.
func (e *env) logCount(msg string, want map[string]string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(e.remora.Output()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || m["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if fmt.Sprint(m[k]) != v {
				ok = false
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// seenBy returns the remote addresses a backend kind reported.
func (e *env) seenBy(kind string) []string {
	var out []string
	for _, line := range strings.Split(e.servers.Output(), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "seen" && f[1] == kind {
			out = append(out, f[2])
		}
	}
	return out
}
