package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/bench/internal/tcpbulk"
)

// proc is a helper or proxy process the suite started and owns.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	log   *os.File
}

// pid is the process id whose CPU and memory are measured.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop ends the process: stdin closed (helpers exit on EOF), then killed.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	if p.stdin != nil {
		p.stdin.Close()
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	if p.log != nil {
		p.log.Close()
	}
}

// pinned returns argv run on one CPU with taskset (when cpu >= 0).
func pinned(cpu int, argv ...string) []string {
	if cpu < 0 {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

// start runs argv with extra environment, stderr to a log file in dir.
func start(dir, name string, env []string, argv ...string) (*proc, io.Reader, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	lf, err := os.Create(dir + "/" + name + ".log")
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = lf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return &proc{name: name, cmd: cmd, stdin: stdin, log: lf}, out, nil
}

// startHelper re-executes this binary in mode and waits for the address
// it prints.
func startHelper(dir string, cpu int, env []string, mode string, args ...string) (*proc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	argv := pinned(cpu, append([]string{self, mode}, args...)...)
	p, out, err := start(dir, mode, env, argv...)
	if err != nil {
		return nil, "", err
	}
	addr, err := readLine(out, 10*time.Second)
	if err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%s: %w", mode, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return p, addr, nil
}

func readLine(r io.Reader, timeout time.Duration) (string, error) {
	ch := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil {
			errc <- err
			return
		}
		ch <- strings.TrimSpace(line)
	}()
	select {
	case l := <-ch:
		return l, nil
	case err := <-errc:
		return "", err
	case <-time.After(timeout):
		return "", fmt.Errorf("no address after %s", timeout)
	}
}

// waitTCP waits until addr accepts connections.
func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after %s: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// cpuTime is a process's user+system CPU seconds (all threads); pid 0
// is no process and costs nothing.
func cpuTime(pid int) float64 {
	u, sys := tcpbulk.CPUTimes(pid)
	return (u + sys).Seconds()
}

// memKB returns VmRSS and VmHWM (peak RSS) of pid in KiB.
func memKB(pid int) (rss, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			peak = v
		}
	}
	return rss, peak
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
