package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/bench/internal/tcpbulk"
)

// tcpResult is one TCP target's rounds.
type tcpResult struct {
	name string
	runs []float64 // MiB/s per round
	cpus []float64 // CPU-s per GiB per round
}

// mibps is the median throughput over the rounds.
func (r *tcpResult) mibps() float64 { return median(r.runs) }

// cpuPerGiB is the median CPU per GiB over the rounds.
func (r *tcpResult) cpuPerGiB() float64 { return median(r.cpus) }

// pairedMedian is the median over rounds of a[i] / b[i]: pairing the
// rounds takes out the drift a VM shows from minute to minute. It is 0
// when the rounds do not pair up.
func pairedMedian(a, b []float64) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	r := make([]float64, len(a))
	for i := range a {
		r[i] = a[i] / b[i]
	}
	return median(r)
}

// tcpTarget is a TCP path to a sink, and its rounds so far.
type tcpTarget struct {
	tcpResult
	ns   string // the namespace the client runs in; "" the host
	addr string
	pid  int
}

// tcpBulk measures scenario (d): one connection sending bulk data to a
// sink that counts it (bench/internal/tcpbulk), direct and through each
// proxy. With root every proxy gets a network namespace of its own with
// remora's capture rules and a sink, listens on the capture port as a
// sidecar does, and the client connects to the ServiceEntry VIP: each
// proxy then pays the same REDIRECT and conntrack work. Without root the
// peers listen on loopback ports and remora, whose TCP path needs
// captured traffic, is left out.
//
// The SCHED_IDLE spinners, there to keep idle vCPUs from adding wake-up
// latency to the HTTP figures, are stopped first: a bulk proxy parks
// and wakes thousands of times per GiB, and each wake that preempts a
// spinner is a switch between address spaces, charged to the proxy
// (measured on a 2 vCPU VM over 10 rounds: go-io.Copy 7% and remora,
// which parks more often, 18% slower with them).
func (s *suite) tcpBulk() error {
	s.stopSpinners()
	captured := os.Getuid() == 0 && have("ip", "iptables", "setpriv")
	if !captured {
		s.note("not root: remora's TCP path needs captured traffic (iptables in a namespace); remora TCP skipped, peers uncaptured")
	}
	if have("nginx") && !haveNginxStream() {
		s.note("nginx's stream module is not installed (apt-get install libnginx-mod-stream): nginx TCP skipped")
	}
	var targets []*tcpTarget
	for _, name := range []string{"direct", "remora", "go-io.Copy", goCopyAgain, "nginx", "haproxy"} {
		if name == "remora" && !captured || name == "nginx" && !haveNginxStream() || name == "haproxy" && !have("haproxy") {
			continue
		}
		t, err := s.startTCPTarget(name, captured)
		if err != nil {
			return fmt.Errorf("tcp %s: %w", name, err)
		}
		targets = append(targets, t)
	}
	return s.tcpRounds(targets)
}

// haveNginxStream says whether nginx can proxy TCP here.
func haveNginxStream() bool {
	_, err := os.Stat(nginxStreamModule)
	return have("nginx") && err == nil
}

// startTCPTarget makes name's namespace (when captured), its sink and
// its proxy.
func (s *suite) startTCPTarget(name string, captured bool) (*tcpTarget, error) {
	t := &tcpTarget{tcpResult: tcpResult{name: name}}
	if captured {
		var err error
		if t.ns, err = s.makeNS(); err != nil {
			return nil, err
		}
		if out, err := exec.Command(s.remora, "iptables", "--netns", t.ns).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("remora iptables: %v: %s", err, out)
		}
	}
	logName := strings.ReplaceAll(name, " ", "-")
	sp, out, err := start(s.dir, "tcpsink-"+logName, nil, inNS(t.ns, pinned(s.loadCPU, s.self(), "tcpsink")...)...)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, sp)
	sink, err := readLine(out, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	var p *proc
	switch name {
	case "direct":
		t.addr = sink
		return t, nil
	case "remora":
		p, err = s.startTCPRemora(t.ns, sink)
		t.addr = tcpbulk.VIP
	case "go-io.Copy", goCopyAgain:
		argv := inNS(t.ns, pinned(s.proxyCPU, s.self(), "tcpproxy", sink, listenAddr(true, t.ns))...)
		p, out, err = start(s.dir, "tcpproxy-"+logName, []string{"GOMAXPROCS=1"}, argv...)
		if err == nil {
			t.addr, err = readLine(out, 10*time.Second)
		}
	case "nginx":
		p, t.addr, err = startNginx(s.dir, s.proxyCPU, sink, true, t.ns)
	case "haproxy":
		p, t.addr, err = startHAProxy(s.dir, s.proxyCPU, sink, true, t.ns)
	}
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	if t.pid = p.pid(); captured {
		t.addr = tcpbulk.VIP
	}
	return t, nil
}

// goCopyAgain is a second plain Go proxy, the same program as
// go-io.Copy in a namespace of its own: the two differ only by chance,
// so their difference is the noise a single run carries.
const goCopyAgain = "go-io.Copy again"

// minTCPRounds is the fewest TCP rounds of a full run.
const minTCPRounds = 9

func (s *suite) tcpRounds(targets []*tcpTarget) error {
	// CPU time comes in 10 ms ticks: a transfer of 1 GiB or more keeps
	// the tick within a few percent of a proxy's CPU per GiB.
	size := int64(2 << 30)
	if s.quick {
		size = 1 << 30
	}
	for _, t := range targets { // warm up and wait until each path works
		if err := s.waitTCPPath(t.ns, t.addr); err != nil {
			return fmt.Errorf("tcp %s: %w", t.name, err)
		}
	}
	// One 2 GiB transfer varies by ±10% from round to round on a VM:
	// the full suite takes the median of at least 9, and every other
	// round runs the targets in reverse, so none always follows another.
	rounds := s.rounds
	if !s.quick {
		rounds = max(rounds, minTCPRounds)
	}
	for round := 1; round <= rounds; round++ {
		s.logf("tcp round %d, load average %s", round, loadAvg())
		order := slices.Clone(targets)
		if round%2 == 0 {
			slices.Reverse(order)
		}
		for _, t := range order {
			u0, s0 := tcpbulk.CPUTimes(t.pid)
			secs, err := s.tcpClient(t.ns, t.addr, size)
			if err != nil {
				return fmt.Errorf("tcp %s: %w", t.name, err)
			}
			u1, s1 := tcpbulk.CPUTimes(t.pid)
			mibps, cpu := tcpbulk.Rate(size, time.Duration(secs*float64(time.Second)), u1-u0+s1-s0)
			t.runs, t.cpus = append(t.runs, mibps), append(t.cpus, cpu)
		}
	}
	for _, t := range targets {
		s.tcp = append(s.tcp, t.tcpResult)
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

// startTCPRemora runs remora in ns as uid 1337 (the uid the capture
// rules exempt) with a TCP ServiceEntry for the sink.
func (s *suite) startTCPRemora(ns, sink string) (*proc, error) {
	port := sink[strings.LastIndexByte(sink, ':')+1:]
	cfg := filepath.Join(s.dir, "mesh-tcp")
	os.MkdirAll(cfg, 0o755)
	if err := os.WriteFile(filepath.Join(cfg, "se.yaml"), []byte(tcpbulk.ServiceEntry(port)), 0o644); err != nil {
		return nil, err
	}
	alog := filepath.Join(s.dir, "remora-tcp-access.log")
	if f, err := os.Create(alog); err == nil {
		f.Close()
		_ = os.Chown(alog, 1337, 1337)
	}
	argv := append([]string{"ip", "netns", "exec", ns, "setpriv", "--reuid", "1337", "--regid", "1337", "--clear-groups"},
		pinned(s.proxyCPU, s.remora, "run", "--config", cfg, "--log-level", "warn",
			"--access-log", alog)...)
	p, _, err := start(s.dir, "remora-tcp", []string{"GOMAXPROCS=1"}, argv...)
	return p, err
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
