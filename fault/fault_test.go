package fault_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/remora-mesh/remora/fault"
)

func seeded(seed uint64) func() uint64 {
	return rand.New(rand.NewPCG(seed, seed+1)).Uint64
}

// always returns a source whose draws are all r.
func always(r uint64) func() uint64 { return func() uint64 { return r } }

func TestDecide(t *testing.T) {
	delay := fault.Delay{Fixed: 2 * time.Second, Percent: 100}
	abort := fault.Abort{HTTPStatus: 503, Percent: 100}
	tests := []struct {
		name   string
		policy *fault.Policy
		rnd    func() uint64
		want   fault.Decision
	}{
		{"nil policy", nil, always(0), fault.Decision{}},
		{"zero policy", &fault.Policy{}, always(0), fault.Decision{}},
		{"zero percent never fires", &fault.Policy{Delay: fault.Delay{Fixed: time.Second}, Abort: fault.Abort{HTTPStatus: 500}}, always(0), fault.Decision{}},
		{"delay only", &fault.Policy{Delay: delay}, always(0), fault.Decision{Delay: 2 * time.Second}},
		{"abort only", &fault.Policy{Abort: abort}, always(0), fault.Decision{Aborted: true, HTTPStatus: 503}},
		{"both: delay then abort", &fault.Policy{Delay: delay, Abort: abort}, always(0), fault.Decision{Delay: 2 * time.Second, Aborted: true, HTTPStatus: 503}},
		{"grpc abort", &fault.Policy{Abort: fault.Abort{GRPCStatus: 14, HasGRPCStatus: true, Percent: 100}}, always(0), fault.Decision{Aborted: true, GRPCStatus: 14, IsGRPC: true}},
		{"grpc OK status is still an abort", &fault.Policy{Abort: fault.Abort{HasGRPCStatus: true, Percent: 100}}, always(0), fault.Decision{Aborted: true, IsGRPC: true}},
		// 0.0001% is one part per million: draws 0 fires, 1 does not.
		{"smallest percent fires on 0", &fault.Policy{Abort: fault.Abort{HTTPStatus: 500, Percent: 0.0001}}, always(0), fault.Decision{Aborted: true, HTTPStatus: 500}},
		{"smallest percent misses 1", &fault.Policy{Abort: fault.Abort{HTTPStatus: 500, Percent: 0.0001}}, always(1), fault.Decision{}},
		{"over 100 is 100", &fault.Policy{Abort: fault.Abort{HTTPStatus: 500, Percent: 250}}, always(999_999), fault.Decision{Aborted: true, HTTPStatus: 500}},
		{"zero delay never fires", &fault.Policy{Delay: fault.Delay{Percent: 100}}, always(0), fault.Decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.policy.Decide(tt.rnd)
			if got != tt.want {
				t.Errorf("Decide = %+v; want %+v", got, tt.want)
			}
		})
	}
}

// TestPercentages draws 4000 decisions from a seeded source per case. Each
// observed rate must be within 3 points of the configured one (the standard
// deviation at 50% is 0.8 points, so 3 points is nearly 4 sigma). Delay and
// abort are independent, so both fire at about d×a.
func TestPercentages(t *testing.T) {
	tests := []struct {
		name         string
		delay, abort float64
	}{
		{"50/50", 50, 50},
		{"10/90", 10, 90},
		{"0.5/25", 0.5, 25},
		{"legacy integer delay percent 30", 30, 0},
		{"100/0", 100, 0},
	}
	const n = 4000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fault.Policy{
				Delay: fault.Delay{Fixed: time.Millisecond, Percent: tt.delay},
				Abort: fault.Abort{HTTPStatus: 500, Percent: tt.abort},
			}
			rnd := seeded(42)
			var delayed, aborted, both int
			for range n {
				d := p.Decide(rnd)
				if d.Delayed() {
					delayed++
				}
				if d.Aborted {
					aborted++
				}
				if d.Delayed() && d.Aborted {
					both++
				}
			}
			check := func(what string, got int, want float64) {
				t.Helper()
				if pct := 100 * float64(got) / n; math.Abs(pct-want) > 3 {
					t.Errorf("%s rate = %.2f%% over %d; want %.2f%% ± 3", what, pct, n, want)
				}
			}
			check("delay", delayed, tt.delay)
			check("abort", aborted, tt.abort)
			check("delay and abort", both, tt.delay*tt.abort/100)
		})
	}
}

func TestActive(t *testing.T) {
	if (&fault.Policy{}).Active() {
		t.Error("zero Policy Active() = true; want false")
	}
	if !(&fault.Policy{Abort: fault.Abort{HTTPStatus: 500, Percent: 1}}).Active() {
		t.Error("abort Policy Active() = false; want true")
	}
}

func BenchmarkDecide(b *testing.B) {
	p := &fault.Policy{
		Delay: fault.Delay{Fixed: time.Second, Percent: 50},
		Abort: fault.Abort{HTTPStatus: 503, Percent: 10},
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(nil)
	}
}
