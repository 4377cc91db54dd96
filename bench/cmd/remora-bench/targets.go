package main

import (
	"fmt"
	"strings"
)

// check is one of issue 9's targets, evaluated on this run.
type check struct {
	what, got, want string
	met             bool
}

// targetsTable states each performance target and whether this run met it.
func (s *suite) targetsTable(b *strings.Builder) {
	var cs []check
	r, n, g := s.agg("remora", "b"), s.agg("nginx", "b"), s.agg("go-rproxy", "b")
	ra, na, ga := s.agg("remora", "a"), s.agg("nginx", "a"), s.agg("go-rproxy", "a")
	d := s.agg("direct", "b")
	if n.ok {
		cs = append(cs,
			check{"CPU per 1000 req at 1000 rps ≤ nginx", fmt.Sprintf("%.3f s", r.cpu1k), fmt.Sprintf("≤ %.3f s", n.cpu1k), r.cpu1k <= n.cpu1k},
			check{"added p50 at 1000 rps ≤ nginx", fmt.Sprintf("%+.3f ms", (r.p50-d.p50)*1000), fmt.Sprintf("≤ %+.3f ms", (n.p50-d.p50)*1000), r.p50 <= n.p50},
			check{"added p99 at 1000 rps ≤ nginx", fmt.Sprintf("%+.3f ms", (r.p99-d.p99)*1000), fmt.Sprintf("≤ %+.3f ms", (n.p99-d.p99)*1000), r.p99 <= n.p99},
			check{"rps per core ≥ 0.8× nginx", fmt.Sprintf("%.0f (%.2f×)", ra.perCore(), ra.perCore()/na.perCore()), fmt.Sprintf("≥ %.0f", 0.8*na.perCore()), ra.perCore() >= 0.8*na.perCore()})
	}
	if g.ok {
		cs = append(cs, check{"rps per core ≥ 2× plain ReverseProxy", fmt.Sprintf("%.0f (%.2f×)", ra.perCore(), ra.perCore()/ga.perCore()), fmt.Sprintf("≥ %.0f", 2*ga.perCore()), ra.perCore() >= 2*ga.perCore()})
	}
	cs = append(cs, s.tcpCheck()...)
	for _, m := range s.mem {
		if m.name != "remora" {
			continue
		}
		cs = append(cs,
			check{"RSS, bookinfo config, after the load ≤ 20 MB", mb(m.after) + " MB", "≤ 20 MB", m.after <= 20<<10},
			check{"RSS with 1,000 services ≤ 50 MB", mb(max(m.bigStart, m.bigLoad)) + " MB", "≤ 50 MB", max(m.bigStart, m.bigLoad) <= 50<<10},
			idleCheck(m))
	}
	b.WriteString("## targets (issue 9)\n\n| target | this run | want | met |\n|---|---|---|---|\n")
	for _, c := range cs {
		met := "no"
		if c.met {
			met = "yes"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", c.what, c.got, c.want, met)
	}
	b.WriteString("\nRoute match over 1,000 rules (≤ 1 µs, 0 allocs) is a Go micro-benchmark: `make bench-micro` (routing).\n")
}

// tcpCheck compares remora's TCP throughput and CPU per GiB with the best
// peer's.
func (s *suite) tcpCheck() []check {
	var rem *tcpResult
	var best *tcpResult
	for i := range s.tcp {
		t := &s.tcp[i]
		switch t.name {
		case "direct", goCopyAgain: // the noise floor, not a peer
		case "remora":
			rem = t
		default:
			if best == nil || t.mibps() > best.mibps() {
				best = t
			}
		}
	}
	if rem == nil || best == nil {
		return nil
	}
	return []check{{
		"TCP bulk ≥ best peer at no more CPU/GiB",
		fmt.Sprintf("%.0f MiB/s, %.3f CPU-s/GiB", rem.mibps(), rem.cpuPerGiB()),
		fmt.Sprintf("≥ %.0f MiB/s (%s), ≤ %.3f CPU-s/GiB", best.mibps(), best.name, best.cpuPerGiB()),
		rem.mibps() >= best.mibps() && rem.cpuPerGiB() <= best.cpuPerGiB(),
	}}
}

// idleCheck scales the 80 MB per 10,000 idle connections target to the
// connections this run held (fewer in -quick).
func idleCheck(m memResult) check {
	limit := int64(80<<10) * int64(m.idleConns) / idleConns
	return check{fmt.Sprintf("%d idle connections add ≤ %s MB", m.idleConns, mb(limit)), mb(m.idle1-m.idle0) + " MB",
		"≤ " + mb(limit) + " MB", m.idleConns > 0 && m.idle1-m.idle0 <= limit}
}
