package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// tcpVIP is the TCP ServiceEntry's address: the client connects to it,
// iptables redirects the connection to remora's 15001, and remora's real
// TCP path (original destination, registry, cluster dial, splice)
// forwards it to the sink.
const tcpVIP = "198.18.0.11:9000"

// tcpResult is one TCP target's medians.
type tcpResult struct {
	name      string
	mibps     float64
	cpuPerGiB float64
}

// tcpTarget is a TCP path to the sink.
type tcpTarget struct {
	name string
	addr string
	pid  int
	runs []float64 // MiB/s
	cpus []float64 // CPU-s per GiB
}

// tcpBulk measures scenario (d): one connection sending bulk data to a
// sink that counts it, direct and through each proxy. With root it runs
// in a network namespace where remora forwards captured traffic (a
// non-redirected connection to 15001 is an explicit HTTP proxy, not a
// TCP one); without root remora is left out.
func (s *suite) tcpBulk() error {
	ns := ""
	if os.Getuid() == 0 && have("ip", "iptables", "setpriv") {
		var err error
		if ns, err = s.makeNS(); err != nil {
			s.note(fmt.Sprintf("no network namespace (%v): remora TCP skipped", err))
			ns = ""
		}
	} else {
		s.note("not root: remora's TCP path needs captured traffic (iptables in a namespace); remora TCP skipped")
	}
	sinkArgv := inNS(ns, pinned(s.loadCPU, s.self(), "tcpsink")...)
	sp, out, err := start(s.dir, "tcpsink", nil, sinkArgv...)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, sp)
	sink, err := readLine(out, 10*time.Second)
	if err != nil {
		return fmt.Errorf("tcp sink: %w", err)
	}
	targets := []*tcpTarget{{name: "direct", addr: sink}}
	if ns != "" {
		pid, err := s.startTCPRemora(ns, sink)
		if err != nil {
			return err
		}
		targets = append(targets, &tcpTarget{name: "remora", addr: tcpVIP, pid: pid})
	}
	add := func(name string, p *proc, addr string, err error) error {
		if err != nil {
			return err
		}
		s.procs = append(s.procs, p)
		targets = append(targets, &tcpTarget{name: name, addr: addr, pid: p.pid()})
		return nil
	}
	if have("nginx") {
		p, a, err := startNginx(s.dir, s.proxyCPU, sink, true, ns)
		if err := add("nginx", p, a, err); err != nil {
			return err
		}
	}
	if have("haproxy") {
		p, a, err := startHAProxy(s.dir, s.proxyCPU, sink, true, ns)
		if err := add("haproxy", p, a, err); err != nil {
			return err
		}
	}
	gp, gout, err := start(s.dir, "tcpproxy", []string{"GOMAXPROCS=1"}, inNS(ns, pinned(s.proxyCPU, s.self(), "tcpproxy", sink)...)...)
	if err != nil {
		return err
	}
	ga, err := readLine(gout, 10*time.Second)
	if err := add("go-io.Copy", gp, ga, err); err != nil {
		return err
	}
	return s.tcpRounds(ns, targets)
}

func (s *suite) tcpRounds(ns string, targets []*tcpTarget) error {
	size := int64(512 << 20)
	if s.quick {
		size = 256 << 20
	}
	for _, t := range targets { // warm up and wait until each path works
		if err := s.waitTCPPath(ns, t.addr); err != nil {
			return fmt.Errorf("tcp %s: %w", t.name, err)
		}
	}
	for round := 1; round <= s.rounds; round++ {
		s.logf("tcp round %d, load average %s", round, loadAvg())
		for _, t := range targets {
			cpu0 := cpuTime(t.pid)
			secs, err := s.tcpClient(ns, t.addr, size)
			if err != nil {
				return fmt.Errorf("tcp %s: %w", t.name, err)
			}
			gib := float64(size) / (1 << 30)
			t.runs = append(t.runs, float64(size)/(1<<20)/secs)
			t.cpus = append(t.cpus, (cpuTime(t.pid)-cpu0)/gib)
		}
	}
	for _, t := range targets {
		s.tcp = append(s.tcp, tcpResult{name: t.name, mibps: median(t.runs), cpuPerGiB: median(t.cpus)})
	}
	return nil
}

func (s *suite) waitTCPPath(ns, addr string) error {
	var err error
	for range 100 {
		if _, err = s.tcpClient(ns, addr, 1<<20); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// tcpClient runs one transfer from the load core and returns its seconds.
func (s *suite) tcpClient(ns, addr string, n int64) (float64, error) {
	argv := inNS(ns, pinned(s.loadCPU, s.self(), "tcpclient", addr, strconv.FormatInt(n, 10))...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
}

func (s *suite) self() string {
	p, _ := os.Executable()
	return p
}

// makeNS creates a network namespace with loopback up and a route for
// the VIP range, as a pod's has; it is deleted when the suite ends.
func (s *suite) makeNS() (string, error) {
	r := make([]byte, 4)
	_, _ = rand.Read(r)
	ns := "remora-bench-" + hex.EncodeToString(r)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	s.cleanups = append(s.cleanups, func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{{"link", "set", "lo", "up"},
		{"link", "add", "veth0", "type", "veth", "peer", "name", "veth1"},
		{"link", "set", "veth0", "up"}, {"link", "set", "veth1", "up"},
		{"addr", "add", "198.18.0.1/15", "dev", "veth0"}} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	return ns, nil
}

// startTCPRemora installs remora's iptables rules in ns and runs remora
// there as uid 1337 with a TCP ServiceEntry for the sink.
func (s *suite) startTCPRemora(ns, sink string) (int, error) {
	port := sink[strings.LastIndexByte(sink, ':')+1:]
	cfg := filepath.Join(s.dir, "mesh-tcp")
	os.MkdirAll(cfg, 0o755)
	se := `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: sink}
spec:
  hosts: [sink.bench.test]
  addresses: [198.18.0.11]
  ports: [{number: 9000, name: tcp, protocol: TCP, targetPort: ` + port + `}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`
	if err := os.WriteFile(filepath.Join(cfg, "se.yaml"), []byte(se), 0o644); err != nil {
		return 0, err
	}
	alog := filepath.Join(s.dir, "remora-tcp-access.log")
	if f, err := os.Create(alog); err == nil {
		f.Close()
		_ = os.Chown(alog, 1337, 1337)
	}
	if out, err := exec.Command(s.remora, "iptables", "--netns", ns).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("remora iptables: %v: %s", err, out)
	}
	argv := append([]string{"ip", "netns", "exec", ns, "setpriv", "--reuid", "1337", "--regid", "1337", "--clear-groups"},
		pinned(s.proxyCPU, s.remora, "run", "--config", cfg, "--log-level", "warn",
			"--access-log", alog)...)
	p, _, err := start(s.dir, "remora-tcp", []string{"GOMAXPROCS=1"}, argv...)
	if err != nil {
		return 0, err
	}
	s.procs = append(s.procs, p)
	return p.pid(), nil
}

// median of xs (0 for none); xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	c := append([]float64(nil), xs...)
	sort.Float64s(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}
