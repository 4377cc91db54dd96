// Package tcpbulk is the TCP bulk-transfer benchmark's parts, shared by
// the side-by-side suite (bench/cmd/remora-bench, scenario d) and the Go
// benchmark in bench/tcp, so both measure the same thing the same way:
// a sink that counts what it reads, a plain Go io.Copy proxy (the peer
// remora must match), a sender, the TCP ServiceEntry remora forwards
// captured connections by, and the proxy's CPU time from /proc.
package tcpbulk

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// VIP is the TCP ServiceEntry's address. A client connects to it, the
// capture rules (`remora iptables`) redirect the connection to 15001,
// and whatever proxy listens there forwards it to the sink: remora by
// its real TCP path (original destination, registry, cluster dial), the
// other proxies to a fixed target.
const VIP = "198.18.0.11:9000"

// CapturePort is where the capture rules redirect outbound connections.
const CapturePort = "15001"

// ServiceEntry is the config that maps VIP to a sink listening on
// 127.0.0.1:sinkPort, as a file for `remora run --config DIR`.
func ServiceEntry(sinkPort string) string {
	return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: sink}
spec:
  hosts: [sink.bench.test]
  addresses: [198.18.0.11]
  ports: [{number: 9000, name: tcp, protocol: TCP, targetPort: ` + sinkPort + `}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`
}

// Sink serves ln until it is closed: it reads each connection to EOF
// and answers with the byte count and a newline.
func Sink(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			n := discard(c)
			fmt.Fprintf(c, "%d\n", n)
		}()
	}
}

// discard reads c to EOF in 256 KiB reads, the size Send writes, and
// returns the byte count. (io.Copy to io.Discard reads 8 KiB at a time:
// the sink's own syscalls would then load the core it shares with the
// sender more than any proxy does.)
func discard(c net.Conn) int64 {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if err != nil {
			return n
		}
	}
}

// Proxy is the plain Go TCP proxy: for each connection ln accepts it
// dials target and runs io.Copy both ways (a splice between the two
// sockets), half-closing each side at EOF. It serves until ln is closed.
func Proxy(ln net.Listener, target string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go pipe(c.(*net.TCPConn), target)
	}
}

func pipe(c *net.TCPConn, target string) {
	defer c.Close()
	u, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{})
	go func() { _, _ = io.Copy(u, c); _ = u.(*net.TCPConn).CloseWrite(); close(done) }()
	_, _ = io.Copy(c, u)
	_ = c.CloseWrite()
	<-done
}

// Send writes n bytes to c in 256 KiB writes, half-closes it and waits
// for the sink's count; it returns the elapsed time, from the first
// write to the count, and an error unless the sink saw all n bytes.
func Send(c *net.TCPConn, n int64) (time.Duration, error) {
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := int64(0); sent < n; {
		k := int(min(int64(len(buf)), n-sent))
		if _, err := c.Write(buf[:k]); err != nil {
			return 0, err
		}
		sent += int64(k)
	}
	if err := c.CloseWrite(); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if got, _ := strconv.ParseInt(strings.TrimSpace(line), 10, 64); err != nil || got != n {
		return 0, fmt.Errorf("sink got %q, %v; want %d bytes", line, err, n)
	}
	return time.Since(start), nil
}

// CPUTimes is the user and system CPU time, over all threads, of
// process pid from /proc/PID/stat; zero for pid 0 (no process, as for
// the direct path) or a process that is gone.
func CPUTimes(pid int) (user, sys time.Duration) {
	if pid == 0 {
		return 0, 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = time.Second / 100 // USER_HZ
	return time.Duration(ut) * tick, time.Duration(st) * tick
}

// Rate is one transfer's figures: MiB/s and the proxy's CPU seconds
// (user + system) per GiB moved.
func Rate(n int64, elapsed, cpu time.Duration) (mibps, cpuPerGiB float64) {
	return float64(n) / (1 << 20) / elapsed.Seconds(), cpu.Seconds() / (float64(n) / (1 << 30))
}
