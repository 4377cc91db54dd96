package lb_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/remora-mesh/remora/lb"
)

// seeded returns a deterministic random source for one goroutine.
func seeded(seed uint64) func() uint64 {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Uint64
}

// endpoints returns n endpoints 10.0.0.1:80 ... with the given weights
// (missing weights are 0, meaning 1) and their own Active counters.
func endpoints(n int, weights ...uint32) []lb.Endpoint {
	eps := make([]lb.Endpoint, n)
	for i := range eps {
		eps[i] = lb.Endpoint{Addr: fmt.Sprintf("10.0.0.%d:80", i+1), Active: new(atomic.Int64)}
		if i < len(weights) {
			eps[i].Weight = weights[i]
		}
	}
	return eps
}

func mustNew(t testing.TB, cfg lb.Config, eps []lb.Endpoint) lb.Picker {
	t.Helper()
	p, err := lb.New(cfg, eps)
	if err != nil {
		t.Fatalf("New(%v): %v", cfg.Policy, err)
	}
	return p
}

// counts picks n times with hash 0 and returns picks per address.
func counts(t *testing.T, p lb.Picker, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for range n {
		ep, ok := p.Pick(0)
		if !ok {
			t.Fatal("Pick: ok = false; want true")
		}
		got[ep.Addr]++
	}
	return got
}

func TestXXHash64(t *testing.T) {
	tests := []struct {
		name, in string
		want     uint64
	}{
		{"empty", "", 0xef46db3751d8e999},
		{"a", "a", 0xd24ec4f1a98c6e5b},
		{"abc", "abc", 0x44bc2cf5ad770999},
		{"39 bytes", "Nobody inspects the spammish repetition", 0xfbcea83c8a378bf1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lb.XXHash64(tt.in, 0); got != tt.want {
				t.Errorf("XXHash64(%q, 0) = %#x; want %#x", tt.in, got, tt.want)
			}
		})
	}
	if got, want := lb.HashHeader("alice"), lb.XXHash64("alice", 0); got != want {
		t.Errorf("HashHeader(alice) = %#x; want %#x", got, want)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     lb.Config
		wantErr bool
	}{
		{"zero is least request", lb.Config{}, false},
		{"passthrough has no picker", lb.Config{Policy: lb.Passthrough}, true},
		{"unknown policy", lb.Config{Policy: 99}, true},
		{"maglev size not prime", lb.Config{Policy: lb.Maglev, MaglevTableSize: 65536}, true},
		{"maglev size too big", lb.Config{Policy: lb.Maglev, MaglevTableSize: 5000011}, true},
		{"maglev small prime", lb.Config{Policy: lb.Maglev, MaglevTableSize: 251}, false},
		{"ring min above max", lb.Config{Policy: lb.RingHash, MinimumRingSize: 10, MaximumRingSize: 5}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := lb.New(tt.cfg, endpoints(3))
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("New(%+v) error = %v; want error %v", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	for _, pol := range []lb.Policy{lb.LeastRequest, lb.RoundRobin, lb.Random, lb.RingHash, lb.Maglev} {
		t.Run(pol.String(), func(t *testing.T) {
			p := mustNew(t, lb.Config{Policy: pol}, nil)
			if ep, ok := p.Pick(1); ok {
				t.Errorf("Pick on no endpoints = %v, true; want false", ep)
			}
		})
	}
}

// TestLeastRequestAvoidsBusy: one of four endpoints has 100 requests in
// flight. Round robin still sends it exactly 1/4 of 10000 picks; P2C sends it
// a pick only when both draws land on it, (1/4)^2 = 6.25%, so we want under
// 8% (the standard deviation over 10000 draws is 0.24 points).
func TestLeastRequestAvoidsBusy(t *testing.T) {
	eps := endpoints(4)
	eps[0].Active.Store(100)
	const n = 10000
	rr := counts(t, mustNew(t, lb.Config{Policy: lb.RoundRobin, Rand: seeded(1)}, eps), n)
	lr := counts(t, mustNew(t, lb.Config{Policy: lb.LeastRequest, Rand: seeded(1)}, eps), n)
	busy := eps[0].Addr
	if got, want := rr[busy], n/4; got != want {
		t.Errorf("round robin picks of busy endpoint = %d; want %d", got, want)
	}
	if got, limit := lr[busy], n*8/100; got >= limit || got >= rr[busy] {
		t.Errorf("least request picks of busy endpoint = %d; want < %d and < round robin's %d", got, limit, rr[busy])
	}
}

// TestLeastRequestWeighted: unequal weights use Envoy's EDF on
// weight/(active+1). Idle, picks follow the weights exactly; when the heavy
// endpoint is loaded its share falls.
func TestLeastRequestWeighted(t *testing.T) {
	eps := endpoints(2, 3, 1)
	p := mustNew(t, lb.Config{Policy: lb.LeastRequest}, eps)
	got := counts(t, p, 4000)
	if got[eps[0].Addr] != 3000 || got[eps[1].Addr] != 1000 {
		t.Errorf("idle picks = %v; want 3000/1000", got)
	}
	eps[0].Active.Store(5) // effective weight 3/6 against 1/1
	p = mustNew(t, lb.Config{Policy: lb.LeastRequest}, eps)
	got = counts(t, p, 3000)
	if g := got[eps[0].Addr]; g < 900 || g > 1100 {
		t.Errorf("loaded heavy endpoint picks = %d of 3000; want 1000±100 (weight 0.5 vs 1)", g)
	}
}

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    []int // picks per endpoint over 6000
	}{
		{"equal", nil, []int{2000, 2000, 2000}},
		{"zero weight means one", []uint32{0, 1, 0}, []int{2000, 2000, 2000}},
		{"weighted 1:2:3", []uint32{1, 2, 3}, []int{1000, 2000, 3000}},
		{"weighted by gcd", []uint32{10, 20, 30}, []int{1000, 2000, 3000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := endpoints(3, tt.weights...)
			got := counts(t, mustNew(t, lb.Config{Policy: lb.RoundRobin, Rand: seeded(7)}, eps), 6000)
			for i, e := range eps {
				if got[e.Addr] != tt.want[i] {
					t.Errorf("picks of %s = %d; want %d", e.Addr, got[e.Addr], tt.want[i])
				}
			}
		})
	}
}

// TestRoundRobinSmooth: weights 5:1 interleave rather than send five in a
// row; in every window of 6 consecutive picks the light endpoint appears
// exactly once.
func TestRoundRobinSmooth(t *testing.T) {
	eps := endpoints(2, 5, 1)
	p := mustNew(t, lb.Config{Policy: lb.RoundRobin, Rand: seeded(3)}, eps)
	seq := make([]string, 60)
	for i := range seq {
		ep, _ := p.Pick(0)
		seq[i] = ep.Addr
	}
	for i := 0; i+6 <= len(seq); i++ {
		light := 0
		for _, a := range seq[i : i+6] {
			if a == eps[1].Addr {
				light++
			}
		}
		if light != 1 {
			t.Fatalf("window %d: light endpoint picked %d times; want 1 (%v)", i, light, seq[i:i+6])
		}
	}
}

// TestRandomWeighted draws 20000 times from a seeded source; each share must
// be within 1.5 points of its weight share (about 5 standard deviations).
func TestRandomWeighted(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
	}{
		{"equal", nil},
		{"weighted 1:3", []uint32{1, 3}},
		{"weighted 1:2:7", []uint32{1, 2, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := max(len(tt.weights), 2)
			eps := endpoints(n, tt.weights...)
			const draws = 20000
			got := counts(t, mustNew(t, lb.Config{Policy: lb.Random, Rand: seeded(11)}, eps), draws)
			checkShares(t, eps, got, draws, 1.5)
		})
	}
}

// checkShares fails if any endpoint's share of total picks is more than tol
// percentage points from its share of the total weight.
func checkShares(t *testing.T, eps []lb.Endpoint, got map[string]int, total int, tol float64) {
	t.Helper()
	var sum float64
	for _, e := range eps {
		sum += float64(max(e.Weight, 1))
	}
	for _, e := range eps {
		want := 100 * float64(max(e.Weight, 1)) / sum
		share := 100 * float64(got[e.Addr]) / float64(total)
		if math.Abs(share-want) > tol {
			t.Errorf("%s share = %.2f%%; want %.2f%% ± %.1f", e.Addr, share, want, tol)
		}
	}
}

func TestConcurrentPicks(t *testing.T) {
	eps := endpoints(5, 1, 2, 3, 4, 5)
	for _, pol := range []lb.Policy{lb.LeastRequest, lb.RoundRobin, lb.Random, lb.RingHash, lb.Maglev} {
		for _, weights := range [][]uint32{nil, {1, 2, 3, 4, 5}} {
			t.Run(fmt.Sprintf("%s/%v", pol, weights), func(t *testing.T) {
				p := mustNew(t, lb.Config{Policy: pol}, endpoints(5, weights...))
				var wg sync.WaitGroup
				for g := range 8 {
					wg.Go(func() {
						for i := range 1000 {
							ep, ok := lb.PickExcept(p, uint64(g*1000+i), []string{eps[0].Addr})
							if !ok {
								t.Error("Pick: ok = false")
								return
							}
							if ep.Active != nil {
								ep.Active.Add(1)
								ep.Active.Add(-1)
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}
