package main

import (
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryFiles hold the container's memory limit: cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// memLimitShare is the part of the cgroup limit given to GOMEMLIMIT: the
// rest is headroom for memory the Go runtime does not count (stacks in
// flight, the binary, kernel socket buffers charged to the cgroup).
const memLimitShare = 0.9

// cgroupMemLimit returns the first finite limit found in files; ok is
// false when there is none ("max", absent, or the v1 "unlimited" value).
func cgroupMemLimit(files []string) (limit int64, ok bool) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// setMemoryLimit sets the Go soft memory limit to 90% of the cgroup's
// memory.max when GOMEMLIMIT is not set, so the garbage collector works
// harder before the kernel's OOM killer ends the sidecar. It returns the
// limit it set (0 for none).
func setMemoryLimit(getenv func(string) string, files []string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit, ok := cgroupMemLimit(files)
	if !ok {
		return 0
	}
	l := int64(float64(limit) * memLimitShare)
	debug.SetMemoryLimit(l)
	return l
}

// checkAdminAddr refuses an admin address that is not loopback: the
// admin API can stop the proxy and change its log level, so, as Envoy's
// under Istio, it stays on 127.0.0.1 unless allowRemote says otherwise.
func checkAdminAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || allowRemote {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--admin-addr %q is not a loopback address (set --admin-allow-remote to expose the admin API)", addr)
}
