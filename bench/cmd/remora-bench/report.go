package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// agg is one target's medians over the rounds for one scenario.
type agg struct {
	qps, cpu1k, p50, p90, p99 float64
	ok                        bool
}

func (s *suite) agg(name, key string) agg {
	rs := s.res[name][key]
	if len(rs) == 0 {
		return agg{}
	}
	pick := func(f func(loadResult) float64) float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	return agg{
		qps:   pick(func(r loadResult) float64 { return r.qps }),
		cpu1k: pick(loadResult.cpuPer1000),
		p50:   pick(func(r loadResult) float64 { return r.p50 }),
		p90:   pick(func(r loadResult) float64 { return r.p90 }),
		p99:   pick(func(r loadResult) float64 { return r.p99 }),
		ok:    true,
	}
}

// perCore is the throughput one core would reach at this CPU cost.
func (a agg) perCore() float64 {
	if a.cpu1k <= 0 {
		return 0
	}
	return 1000 / a.cpu1k
}

func ms(sec float64) string { return fmt.Sprintf("%.3f", sec*1000) }

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func mb(kb int64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }

// writeReport renders the markdown report, prints it and saves it as
// DIR/<date>.md.
func (s *suite) writeReport(dir string) error {
	var b strings.Builder
	host, _ := os.Hostname()
	mode := "full"
	if s.quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "# remora bench %s (%s, %d round(s), medians; parts %s)\n\n", time.Now().Format("2006-01-02 15:04"), mode, s.rounds, s.parts)
	fmt.Fprintf(&b, "Host %s, %d CPUs, %s; proxy on CPU %d, fortio and backend on CPU %d. ", host, runtime.NumCPU(), runtime.Version(), s.proxyCPU, s.loadCPU)
	fmt.Fprintf(&b, "%s.\n\n", strings.Join(s.loads, "; "))
	s.httpTable(&b)
	s.ratioTable(&b)
	s.tcpTable(&b)
	s.memTable(&b)
	s.targetsTable(&b)
	if len(s.notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range s.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	fmt.Print(b.String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := time.Now().Format("2006-01-02-1504")
	if s.quick {
		name += "-quick"
	}
	path := filepath.Join(dir, name+".md")
	s.logf("report: %s", path)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func (s *suite) httpTable(b *strings.Builder) {
	b.WriteString("## HTTP/1.1 (fortio, keep-alive; latencies in ms)\n\n")
	b.WriteString("| target | (a) rps, 64 conns | (a) CPU-s/1000 req | rps per core (projected) | (b) p50 | p90 | p99 | added p50 | added p99 | (e) CPU-s/1000 req at 1000 rps | (c) 16 KiB p50 | p99 | added p50 | added p99 | CPU-s/1000 req |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	d, d16 := s.agg("direct", "b"), s.agg("direct", "c")
	for _, t := range s.targets {
		a, l, c := s.agg(t.name, "a"), s.agg(t.name, "b"), s.agg(t.name, "c")
		cpuA, core, cpuB, cpuC := "—", "—", "—", "—"
		if t.pid != 0 {
			cpuA, core = fmt.Sprintf("%.3f", a.cpu1k), fmt.Sprintf("%.0f", a.perCore())
			cpuB, cpuC = fmt.Sprintf("%.3f", l.cpu1k), fmt.Sprintf("%.3f", c.cpu1k)
		}
		fmt.Fprintf(b, "| %s | %.0f | %s | %s | %s | %s | %s | %+.3f | %+.3f | %s | %s | %s | %+.3f | %+.3f | %s |\n",
			t.name, a.qps, cpuA, core, ms(l.p50), ms(l.p90), ms(l.p99), (l.p50-d.p50)*1000, (l.p99-d.p99)*1000, cpuB,
			ms(c.p50), ms(c.p99), (c.p50-d16.p50)*1000, (c.p99-d16.p99)*1000, cpuC)
	}
	b.WriteString("\n")
}

// ratioTable compares remora with direct and with each peer.
func (s *suite) ratioTable(b *strings.Builder) {
	r := func(k string) agg { return s.agg("remora", k) }
	ra, rb, rc := r("a"), r("b"), r("c")
	d, d16 := s.agg("direct", "b"), s.agg("direct", "c")
	b.WriteString("## remora relative to each peer (lower is better except throughput)\n\n")
	b.WriteString("| vs | max rps (a) | rps per core | CPU/1000 req at 1000 rps | added p50 | added p99 | added p50 16 KiB | added p99 16 KiB |\n|---|---|---|---|---|---|---|---|\n")
	for _, t := range s.targets {
		if t.name == "remora" {
			continue
		}
		a, l, c := s.agg(t.name, "a"), s.agg(t.name, "b"), s.agg(t.name, "c")
		if t.name == "direct" {
			fmt.Fprintf(b, "| direct | %s | — | — | — | — | — | — |\n", ratio(ra.qps, a.qps))
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", t.name, ratio(ra.qps, a.qps), ratio(ra.perCore(), a.perCore()),
			ratio(rb.cpu1k, l.cpu1k), ratio(rb.p50-d.p50, l.p50-d.p50), ratio(rb.p99-d.p99, l.p99-d.p99),
			ratio(rc.p50-d16.p50, c.p50-d16.p50), ratio(rc.p99-d16.p99, c.p99-d16.p99))
	}
	b.WriteString("\n")
}

func (s *suite) tcpTable(b *strings.Builder) {
	if len(s.tcp) == 0 {
		return
	}
	fmt.Fprintf(b, "## (d) TCP bulk, one connection, %d round(s)\n\n", len(s.tcp[0].runs))
	b.WriteString("| target | MiB/s | × direct | remora's MiB/s ÷ this, per round | proxy CPU-s per GiB | remora's CPU per GiB ÷ this |\n|---|---|---|---|---|---|\n")
	byName := map[string]*tcpResult{}
	for i := range s.tcp {
		byName[s.tcp[i].name] = &s.tcp[i]
	}
	direct, remora := s.tcp[0].mibps(), byName["remora"]
	for _, t := range s.tcp {
		cpu, vs, paired := "—", "—", "—"
		if t.name != "direct" {
			cpu = fmt.Sprintf("%.3f", t.cpuPerGiB())
		}
		if remora != nil && t.name != "direct" {
			vs = ratio(remora.cpuPerGiB(), t.cpuPerGiB())
		}
		if remora != nil {
			paired = fmt.Sprintf("%.2f× (median)", pairedMedian(remora.runs, t.runs))
		}
		fmt.Fprintf(b, "| %s | %.0f | %s | %s | %s | %s |\n", t.name, t.mibps(), ratio(t.mibps(), direct), paired, cpu, vs)
	}
	if g, again := byName["go-io.Copy"], byName[goCopyAgain]; g != nil && again != nil {
		fmt.Fprintf(b, "\nThe noise floor: go-io.Copy and %s are the same program; per round the first moved %.2f× the second's MiB/s at %.2f× its CPU per GiB (medians; medians of all rounds %s and %s).\n",
			goCopyAgain, pairedMedian(g.runs, again.runs), pairedMedian(g.cpus, again.cpus),
			ratio(g.mibps(), again.mibps()), ratio(g.cpuPerGiB(), again.cpuPerGiB()))
	}
	b.WriteString("\n")
}

func (s *suite) memTable(b *strings.Builder) {
	b.WriteString("## (f, g) memory, RSS in MB\n\n| target | after start | after the load | peak | idle conns held | RSS with them | added by them |\n|---|---|---|---|---|---|---|\n")
	for _, m := range s.mem {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %d | %s | %s |\n", m.name, mb(m.start), mb(m.after), mb(m.hwm), m.idleConns, mb(m.idle1), mb(m.idle1-m.idle0))
	}
	for _, m := range s.mem {
		if m.bigStart > 0 {
			fmt.Fprintf(b, "\nremora with 1,000 more services (each a ServiceEntry, VirtualService and DestinationRule with 3 subsets): %s MB after start, %s MB after 2 s at 1000 rps.\n", mb(m.bigStart), mb(m.bigLoad))
		}
	}
	b.WriteString("\n")
}
