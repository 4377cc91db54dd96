package outlier_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/remora-mesh/remora/internal/clock"
	"github.com/remora-mesh/remora/outlier"
)

var (
	a, b, c = "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"
	three   = []string{a, b, c}
	epoch   = time.Unix(1_700_000_000, 0)
)

// cfg3 ejects after 3 consecutive 5xx, with room to eject any one of three.
func cfg3() outlier.Config {
	return outlier.Config{Consecutive5xxErrors: 3, MaxEjectionPercent: 100}
}

func record(d *outlier.Detector, addr string, statuses ...int) {
	for _, s := range statuses {
		d.Record(addr, s)
	}
}

func wantEjected(t *testing.T, d *outlier.Detector, addr string, want bool, when string) {
	t.Helper()
	if got := d.Ejected(addr); got != want {
		t.Errorf("%s: Ejected(%s) = %v; want %v", when, addr, got, want)
	}
}

// TestEjectionLifecycle: three endpoints, one failing. The third 503 ejects
// it at once; it stays out for BaseEjectionTime, returns at the first Sweep
// after, and a second ejection lasts twice as long.
func TestEjectionLifecycle(t *testing.T) {
	clk := clock.NewFake(epoch)
	var events []outlier.Event
	d := outlier.New(cfg3(), clk, three, func(e outlier.Event) { events = append(events, e) })
	base := outlier.DefaultBaseEjectionTime

	record(d, a, 503, 503)
	record(d, b, 200)
	wantEjected(t, d, a, false, "after two 503s")
	record(d, a, 503)
	wantEjected(t, d, a, true, "at the third 503, before any Sweep")
	wantEjected(t, d, b, false, "healthy endpoint")

	clk.Advance(base - time.Second)
	d.Sweep()
	wantEjected(t, d, a, true, "1s before BaseEjectionTime")
	clk.Advance(time.Second)
	d.Sweep()
	wantEjected(t, d, a, false, "after BaseEjectionTime")

	record(d, a, 500, 502, 503) // fails again within one interval
	wantEjected(t, d, a, true, "second run")
	clk.Advance(2*base - time.Second)
	d.Sweep()
	wantEjected(t, d, a, true, "second ejection, 1s before 2×BaseEjectionTime")
	clk.Advance(time.Second)
	d.Sweep()
	wantEjected(t, d, a, false, "second ejection, after 2×BaseEjectionTime")

	if got, want := len(events), 4; got != want {
		t.Fatalf("got %d events; want %d: %+v", got, want, events)
	}
	want := []outlier.Event{
		{Addr: a, Ejected: true, Reason: outlier.Consecutive5xx, Ejections: 1, Duration: base},
		{Addr: a, Ejections: 1},
		{Addr: a, Ejected: true, Reason: outlier.Consecutive5xx, Ejections: 2, Duration: 2 * base},
		{Addr: a, Ejections: 2},
	}
	for i := range want {
		if events[i] != want[i] {
			t.Errorf("event %d = %+v; want %+v", i, events[i], want[i])
		}
	}
	st := d.Stats()
	if st.EjectionsEnforcedTotal != 2 || st.EjectionsActive != 0 {
		t.Errorf("Stats = %+v; want 2 enforced, 0 active", st)
	}
}

// TestMultiplierDecay: each Sweep at least one Interval after the return to
// service lowers the multiplier by one, so an endpoint that stays healthy is
// ejected for BaseEjectionTime again.
func TestMultiplierDecay(t *testing.T) {
	clk := clock.NewFake(epoch)
	d := outlier.New(cfg3(), clk, three, nil)
	cfg := d.Config()
	record(d, a, 503, 503, 503)
	clk.Advance(cfg.BaseEjectionTime)
	d.Sweep() // back, multiplier 1
	record(d, a, 503, 503, 503)
	clk.Advance(2 * cfg.BaseEjectionTime)
	d.Sweep() // back, multiplier 2
	for _, want := range []uint32{1, 0, 0} {
		clk.Advance(cfg.Interval)
		d.Sweep()
		if s, _ := d.State(a); s.Multiplier != want {
			t.Errorf("Multiplier after a healthy Interval = %d; want %d", s.Multiplier, want)
		}
	}
	record(d, a, 503, 503, 503)
	clk.Advance(cfg.BaseEjectionTime)
	d.Sweep()
	wantEjected(t, d, a, false, "after decay, one BaseEjectionTime")
}

// TestMaxEjectionTime: the multiplier stops growing once base×multiplier
// reaches MaxEjectionTime+base; ejections last at most MaxEjectionTime.
func TestMaxEjectionTime(t *testing.T) {
	clk := clock.NewFake(epoch)
	var last outlier.Event
	d := outlier.New(cfg3(), clk, three, func(e outlier.Event) {
		if e.Ejected {
			last = e
		}
	})
	for range 15 {
		record(d, a, 503, 503, 503)
		clk.Advance(outlier.DefaultMaxEjectionTime)
		d.Sweep()
	}
	s, _ := d.State(a)
	if s.Multiplier != 11 || s.Ejections != 15 {
		t.Errorf("State = %+v; want Multiplier 11 (30s×11 ≥ 300s+30s), Ejections 15", s)
	}
	if last.Duration != outlier.DefaultMaxEjectionTime {
		t.Errorf("last ejection Duration = %v; want %v", last.Duration, outlier.DefaultMaxEjectionTime)
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	ten := make([]string, 10)
	for i := range ten {
		ten[i] = fmt.Sprintf("10.0.1.%d:80", i+1)
	}
	tests := []struct {
		name         string
		addrs        []string
		cfg          outlier.Config
		failing      int
		wantEjected  int
		wantOverflow uint64
	}{
		{"default 10% of 10 ejects one", ten, outlier.DefaultConfig(), 3, 1, 2},
		{"30% of 10 ejects three", ten, outlier.Config{Consecutive5xxErrors: 5, MaxEjectionPercent: 30}, 5, 3, 2},
		{"default 10% of 3 ejects none, as current Envoy", three, outlier.DefaultConfig(), 1, 0, 1},
		{"always eject one host", three, outlier.Config{Consecutive5xxErrors: 5, AlwaysEjectOneHost: true}, 2, 1, 1},
		{"100% may eject all", three, outlier.Config{Consecutive5xxErrors: 5, MaxEjectionPercent: 100}, 3, 3, 0},
		{"over 100 means 100", three, outlier.Config{Consecutive5xxErrors: 5, MaxEjectionPercent: 250}, 3, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := outlier.New(tt.cfg, clock.NewFake(epoch), tt.addrs, nil)
			for _, addr := range tt.addrs[:tt.failing] {
				for range 5 {
					d.Record(addr, 500)
				}
			}
			ejected := 0
			for _, addr := range tt.addrs {
				if d.Ejected(addr) {
					ejected++
				}
			}
			st := d.Stats()
			if ejected != tt.wantEjected || st.EjectionsActive != tt.wantEjected || st.EjectionsOverflow != tt.wantOverflow {
				t.Errorf("ejected %d (active %d), overflow %d; want %d, %d", ejected, st.EjectionsActive, st.EjectionsOverflow, tt.wantEjected, tt.wantOverflow)
			}
		})
	}
}

func TestRuns(t *testing.T) {
	type step struct {
		status int           // upstream status, or 0 for local
		local  outlier.Local // when status is 0
	}
	s := func(codes ...int) []step {
		out := make([]step, len(codes))
		for i, c := range codes {
			out[i] = step{status: c}
		}
		return out
	}
	l := func(rs ...outlier.Local) []step {
		out := make([]step, len(rs))
		for i, r := range rs {
			out[i] = step{local: r}
		}
		return out
	}
	gw := outlier.Config{ConsecutiveGatewayErrors: 3, MaxEjectionPercent: 100}
	split := outlier.Config{Consecutive5xxErrors: 3, SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailures: 3, MaxEjectionPercent: 100}
	tests := []struct {
		name       string
		cfg        outlier.Config
		steps      []step
		wantReason outlier.Reason // 0: not ejected
	}{
		{"three 5xx", cfg3(), s(500, 501, 599), outlier.Consecutive5xx},
		{"success breaks the run", cfg3(), s(500, 500, 200, 500, 500), 0},
		{"4xx is success", cfg3(), s(503, 503, 404, 503), 0},
		{"5xx threshold 0 disables", outlier.Config{MaxEjectionPercent: 100}, s(500, 500, 500, 500, 500, 500), 0},
		{"gateway errors", gw, s(502, 503, 504), outlier.ConsecutiveGatewayFailure},
		{"500 breaks a gateway run", gw, s(502, 503, 500, 504), 0},
		{"unsplit connect failures are 503s", cfg3(), l(outlier.ConnectFailed, outlier.ConnectFailed, outlier.Timeout), outlier.Consecutive5xx},
		{"unsplit local failures are gateway errors", gw, l(outlier.ConnectFailed, outlier.Timeout, outlier.ConnectFailed), outlier.ConsecutiveGatewayFailure},
		{"unsplit mixes local and upstream", cfg3(), append(l(outlier.ConnectFailed), s(500, 503)...), outlier.Consecutive5xx},
		{"unsplit connect success is ignored", cfg3(), append(s(500, 500), append(l(outlier.ConnectSuccess), s(500)...)...), outlier.Consecutive5xx},
		{"unsplit TCP success ends the run", cfg3(), append(s(500, 500), append(l(outlier.ConnectSuccessFinal), s(500)...)...), 0},
		{"split local failures", split, l(outlier.ConnectFailed, outlier.Timeout, outlier.ConnectFailed), outlier.ConsecutiveLocalOriginFailure},
		{"split keeps local out of 5xx", split, append(l(outlier.ConnectFailed, outlier.ConnectFailed), s(503, 503)...), 0},
		{"split connect success ends the local run", split, l(outlier.ConnectFailed, outlier.ConnectFailed, outlier.ConnectSuccess, outlier.ConnectFailed), 0},
		{"split upstream 5xx still count", split, append(s(500, 500), append(l(outlier.ConnectSuccess), s(500)...)...), outlier.Consecutive5xx},
		{"split local threshold 0 disables", outlier.Config{SplitExternalLocalOriginErrors: true, MaxEjectionPercent: 100}, l(outlier.ConnectFailed, outlier.ConnectFailed, outlier.ConnectFailed, outlier.ConnectFailed, outlier.ConnectFailed), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got outlier.Reason
			d := outlier.New(tt.cfg, clock.NewFake(epoch), three, func(e outlier.Event) {
				if e.Ejected {
					got = e.Reason
				}
			})
			for _, st := range tt.steps {
				if st.status != 0 {
					d.Record(a, st.status)
				} else {
					d.RecordLocal(a, st.local)
				}
			}
			if got != tt.wantReason || d.Ejected(a) != (tt.wantReason != 0) {
				t.Errorf("ejection reason %q (ejected %v); want %q", got, d.Ejected(a), tt.wantReason)
			}
		})
	}
}

// TestRefusedRunRestarts: when MaxEjectionPercent refuses an ejection the
// run's count restarts, as in Envoy, so the next attempt needs a full run.
func TestRefusedRunRestarts(t *testing.T) {
	d := outlier.New(outlier.Config{Consecutive5xxErrors: 3, MaxEjectionPercent: 40}, clock.NewFake(epoch), three, nil)
	record(d, a, 500, 500, 500)
	record(d, b, 500, 500, 500) // refused: 2/3 > 40%
	if s, _ := d.State(b); s.Consecutive5xx != 0 || s.Ejected {
		t.Errorf("after refused ejection State(b) = %+v; want run restarted, not ejected", s)
	}
	if got := d.Stats(); got.EjectionsOverflow != 1 || got.EjectionsDetected[outlier.Consecutive5xx-1] != 2 {
		t.Errorf("Stats = %+v; want 1 overflow, 2 detected", got)
	}
}

// TestUpdate keeps state for addresses that stay and forgets removed ones.
func TestUpdate(t *testing.T) {
	clk := clock.NewFake(epoch)
	d := outlier.New(cfg3(), clk, three, nil)
	record(d, a, 503, 503, 503)
	record(d, c, 503, 503, 503)
	record(d, b, 503, 503)
	d.Update(outlier.Config{Consecutive5xxErrors: 3, MaxEjectionPercent: 100, BaseEjectionTime: time.Minute}, []string{a, b, "10.0.0.4:80"})

	wantEjected(t, d, a, true, "kept ejected endpoint")
	if _, ok := d.State(c); ok {
		t.Errorf("State(%s) found after removal; want forgotten", c)
	}
	if s, _ := d.State(b); s.Consecutive5xx != 2 {
		t.Errorf("State(b).Consecutive5xx = %d; want 2 kept across Update", s.Consecutive5xx)
	}
	if got := d.Stats().EjectionsActive; got != 1 {
		t.Errorf("EjectionsActive = %d; want 1 (removed endpoint no longer counted)", got)
	}
	d.Record(b, 503)
	wantEjected(t, d, b, true, "run continued across Update")
	clk.Advance(30 * time.Second)
	d.Sweep()
	wantEjected(t, d, a, true, "new BaseEjectionTime 1m applies")
	d.Record(c, 503) // unknown now: ignored
	states := d.States()
	if len(states) != 3 || states[0].Addr != a || states[2].Addr != "10.0.0.4:80" {
		t.Errorf("States = %+v; want 3 sorted by address", states)
	}
}

func TestDefaults(t *testing.T) {
	got := outlier.DefaultConfig()
	want := outlier.Config{
		Consecutive5xxErrors:           5,
		ConsecutiveLocalOriginFailures: 5,
		Interval:                       10 * time.Second,
		BaseEjectionTime:               30 * time.Second,
		MaxEjectionTime:                300 * time.Second,
		MaxEjectionPercent:             10,
	}
	if got != want {
		t.Errorf("DefaultConfig() = %+v; want %+v", got, want)
	}
	d := outlier.New(outlier.Config{BaseEjectionTime: 10 * time.Minute}, nil, nil, nil)
	if got := d.Config().MaxEjectionTime; got != 10*time.Minute {
		t.Errorf("MaxEjectionTime with base 10m = %v; want 10m (base when larger)", got)
	}
	if d.Ejected("unknown") {
		t.Error("Ejected(unknown) = true; want false")
	}
}

// TestConcurrent records from many goroutines while sweeping; run with -race.
func TestConcurrent(t *testing.T) {
	clk := clock.NewFake(epoch)
	d := outlier.New(cfg3(), clk, three, func(outlier.Event) {})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				addr := three[(g+i)%3]
				if i%4 == 0 {
					d.Record(addr, 200)
				} else {
					d.Record(addr, 503)
				}
				d.RecordLocal(addr, outlier.ConnectFailed)
				_ = d.Ejected(addr)
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			clk.Advance(time.Minute)
			d.Sweep()
			_ = d.States()
		}
	})
	wg.Wait()
	if st := d.Stats(); st.EjectionsActive < 0 || st.EjectionsActive > 3 {
		t.Errorf("EjectionsActive = %d; want 0..3", st.EjectionsActive)
	}
}
