// Package tcp benchmarks TCP bulk transfer through three paths in one
// run: direct loopback, a plain Go io.Copy proxy (a separate process),
// and a real `remora run` process forwarding a captured connection. Its
// parts are bench/internal/tcpbulk's, the same the suite's scenario (d)
// uses; this benchmark runs unpinned, one case at a time, for profiling
// (the suite's table is the comparison to quote).
//
// The remora path needs what a sidecar has: `remora iptables` in a
// network namespace the benchmark creates, remora running as uid 1337,
// and the client connecting to a TCP ServiceEntry VIP (198.18.0.11:9000)
// so its connection is redirected to 15001 and forwarded by remora's
// real TCP proxy (original destination, registry lookup, upstream
// cluster dial, splice). That needs root; without it the remora case is
// skipped and the others run on the host's loopback. All three cases
// run inside the same namespace when root, so they share one loopback.
//
//	go test -run '^$' -bench . ./bench/tcp
//
// Each case reports MiB/s and proxy-cpu-s/GiB: the CPU time (user +
// system, from /proc/PID/stat) the proxy process spent per GiB moved.
package tcp
