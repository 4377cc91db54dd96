// Command remora-bench is remora's side-by-side performance suite: it
// builds remora, starts a backend, and measures direct loopback, remora
// (GOMAXPROCS=1, pinned to one core), nginx (one worker, upstream
// keepalive), HAProxy (nbthread 1, http-reuse) and a plain
// httputil.ReverseProxy in interleaved rounds with fortio as the load
// generator, then writes a markdown report. `make bench` runs it; see
// docs/performance.md for the method.
//
//	remora-bench [-quick] [-rounds N] [-out DIR]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// target is one way to reach the backend: direct or through a proxy.
type target struct {
	name string
	addr string
	pid  int // the process whose CPU and memory count; 0 for direct
	p    *proc
	rss0 int64 // KiB right after start
}

// suite is one run: its settings, processes and results.
type suite struct {
	quick    bool
	rounds   int
	dir      string
	root     string // module root
	remora   string // built binaries
	fortio   string
	proxyCPU int
	loadCPU  int
	backend  string
	targets  []*target
	procs    []*proc
	spinners []*proc // stopped before the TCP part (tcpBulk)
	cleanups []func()
	parts    string
	res      map[string]map[string][]loadResult // target → scenario → rounds
	tcp      []tcpResult
	mem      []memResult
	notes    []string
	admin    string // remora's admin address, for -profile
	profile  string // directory for remora's CPU and allocation profiles
	started  time.Time
	loads    []string
}

// scenarios are the HTTP load shapes, run for every target each round.
var scenarios = []struct {
	key, title string
	spec       loadSpec
}{
	{"a", "max throughput, 64 connections, small response", loadSpec{qps: 0, conns: 64, path: "/"}},
	{"b", "1000 rps, 16 connections, small response", loadSpec{qps: 1000, conns: 16, path: "/"}},
	{"c", "1000 rps, 16 connections, 16 KiB response", loadSpec{qps: 1000, conns: 16, path: "/16k"}},
}

func main() {
	if len(os.Args) > 1 {
		if m, ok := modes[os.Args[1]]; ok {
			os.Exit(m(os.Args[2:]))
		}
	}
	s := &suite{res: map[string]map[string][]loadResult{}, started: time.Now()}
	out := flag.String("out", "bench/results", "directory for the markdown report")
	only := flag.String("only", "http,mem,tcp", "parts to run: http (a, b, c, e), mem (f, g), tcp (d)")
	keep := flag.Bool("keep", false, "keep the work directory (configs, logs) for inspection")
	flag.BoolVar(&s.quick, "quick", false, "one short round (under a minute)")
	flag.IntVar(&s.rounds, "rounds", 3, "interleaved rounds (medians are reported)")
	flag.StringVar(&s.profile, "profile", "", "also write remora's CPU and allocation profiles under load to this directory")
	flag.Parse()
	if s.quick {
		s.rounds = 1
	}
	s.parts = *only
	err := s.run(*out)
	s.stopAll()
	if s.dir != "" && !*keep {
		os.RemoveAll(s.dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "remora-bench:", err)
		os.Exit(1)
	}
}

func (s *suite) run(outDir string) error {
	if err := s.setup(); err != nil {
		return err
	}
	s.logf("load average at start: %s", loadAvg())
	if err := s.startTargets(); err != nil {
		return err
	}
	for _, part := range []struct {
		name string
		run  func() error
	}{{"http", s.httpRounds}, {"profile", s.profiles}, {"mem", s.memory}, {"tcp", s.tcpBulk}} {
		if part.name == "profile" && s.profile == "" || part.name != "profile" && !strings.Contains(s.parts, part.name) {
			continue
		}
		if err := part.run(); err != nil {
			return err
		}
	}
	s.logf("load average at end: %s", loadAvg())
	return s.writeReport(outDir)
}

func (s *suite) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "[%5.1fs] %s\n", time.Since(s.started).Seconds(), msg)
	if strings.HasPrefix(msg, "load average") {
		s.loads = append(s.loads, msg)
	}
}

// setup builds the binaries, raises the file limit and starts one
// SCHED_IDLE spinner per CPU.
func (s *suite) setup() error {
	var err error
	if s.dir, err = os.MkdirTemp("", "remora-bench-"); err != nil {
		return err
	}
	os.Chmod(s.dir, 0o755)
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	s.root = filepath.Dir(strings.TrimSpace(string(gomod)))
	s.remora, s.fortio = filepath.Join(s.dir, "remora"), filepath.Join(s.dir, "fortio")
	s.logf("building remora and fortio")
	for _, b := range [][]string{{s.remora, "./cmd/remora"}, {s.fortio, "fortio.org/fortio"}} {
		// Static, as make build, the image and the releases build it.
		cmd := exec.Command("go", "build", "-trimpath", "-o", b[0], b[1])
		cmd.Dir, cmd.Env = s.root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	raiseFileLimit()
	s.proxyCPU, s.loadCPU = -1, -1
	if runtime.NumCPU() >= 2 && have("taskset") {
		s.proxyCPU, s.loadCPU = 0, 1
	} else {
		s.note("fewer than 2 CPUs or no taskset: processes are not pinned")
	}
	if have("chrt", "taskset") {
		self, _ := os.Executable()
		for cpu := range runtime.NumCPU() {
			p, _, err := start(s.dir, fmt.Sprintf("spin%d", cpu), nil, "chrt", "--idle", "0", "taskset", "-c", fmt.Sprint(cpu), self, "spin")
			if err != nil {
				return err
			}
			s.spinners = append(s.spinners, p)
		}
	} else {
		s.note("no chrt: no SCHED_IDLE spinners; idle vCPUs may add wake-up latency")
	}
	return nil
}

// stopSpinners ends the SCHED_IDLE spinners (once).
func (s *suite) stopSpinners() {
	for _, p := range s.spinners {
		p.stop()
	}
	s.spinners = nil
}

func (s *suite) note(msg string) {
	s.notes = append(s.notes, msg)
	s.logf("note: %s", msg)
}

// startTargets starts the backend and every proxy in front of it.
func (s *suite) startTargets() error {
	bp, addr, err := startHelper(s.dir, s.loadCPU, nil, "backend")
	if err != nil {
		return err
	}
	s.procs = append(s.procs, bp)
	s.backend = addr
	s.targets = append(s.targets, &target{name: "direct", addr: addr})
	var port int
	fmt.Sscanf(addr[strings.LastIndexByte(addr, ':')+1:], "%d", &port)
	cfg := filepath.Join(s.dir, "mesh")
	if err := writeMesh(cfg, port, 0); err != nil {
		return err
	}
	r, err := startRemora(s.remora, s.dir, "remora", s.proxyCPU, cfg)
	if err != nil {
		return err
	}
	s.add("remora", r.addr, r.proc)
	s.admin = r.admin
	if have("nginx") {
		p, a, err := startNginx(s.dir, s.proxyCPU, s.backend, false, "")
		if err != nil {
			return err
		}
		s.add("nginx", a, p)
	} else {
		s.note("nginx not installed: skipped")
	}
	if have("haproxy") {
		p, a, err := startHAProxy(s.dir, s.proxyCPU, s.backend, false, "")
		if err != nil {
			return err
		}
		s.add("haproxy", a, p)
	} else {
		s.note("haproxy not installed: skipped")
	}
	p, a, err := startHelper(s.dir, s.proxyCPU, []string{"GOMAXPROCS=1"}, "rproxy", s.backend)
	if err != nil {
		return err
	}
	s.add("go-rproxy", a, p)
	for _, t := range s.targets {
		if err := waitTCP(t.addr, 10*time.Second); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		if t.pid != 0 {
			t.rss0, _ = memKB(t.pid)
		}
	}
	return nil
}

func (s *suite) add(name, addr string, p *proc) {
	s.procs = append(s.procs, p)
	s.targets = append(s.targets, &target{name: name, addr: addr, pid: p.pid(), p: p})
}

func (s *suite) stopAll() {
	s.stopSpinners()
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	for _, f := range s.cleanups {
		f()
	}
}

// durations returns the length of a throughput and a latency run.
func (s *suite) durations() (max, paced time.Duration) {
	if s.quick {
		return time.Second, 1500 * time.Millisecond
	}
	return 2 * time.Second, 4 * time.Second
}

// httpRounds warms every target up, then runs every scenario against
// every target, round after round, so slow drifts of the machine hit
// all targets alike.
func (s *suite) httpRounds() error {
	maxDur, pacedDur := s.durations()
	for _, t := range s.targets {
		if _, err := s.runLoad(t, loadSpec{qps: 0, conns: 64, dur: 500 * time.Millisecond, path: "/"}); err != nil {
			return err
		}
		s.res[t.name] = map[string][]loadResult{}
	}
	for round := 1; round <= s.rounds; round++ {
		s.logf("round %d of %d, load average %s", round, s.rounds, loadAvg())
		for _, sc := range scenarios {
			spec := sc.spec
			spec.dur = pacedDur
			if spec.qps == 0 {
				spec.dur = maxDur
			}
			for _, t := range s.targets {
				r, err := s.runLoad(t, spec)
				if err != nil {
					return err
				}
				if r.errors > 0 {
					s.note(fmt.Sprintf("%s scenario %s round %d: %d non-200 answers", t.name, sc.key, round, r.errors))
				}
				s.res[t.name][sc.key] = append(s.res[t.name][sc.key], r)
			}
		}
	}
	return nil
}

// raiseFileLimit lifts the open-file limit, which every child inherits,
// as far as it goes (the hard limit too, when allowed).
func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	if lim.Max < 200000 {
		up := syscall.Rlimit{Cur: 200000, Max: 200000}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return
		}
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
