package lb_test

import (
	"fmt"
	"testing"

	"github.com/remora-mesh/remora/lb"
)

// BenchmarkPick measures one Pick per policy over 16 endpoints, equal and
// unequal weights, from parallel goroutines with the default random source.
// Every case should report 0 allocs/op.
func BenchmarkPick(b *testing.B) {
	weights := []uint32{1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8}
	for _, pol := range []lb.Policy{lb.LeastRequest, lb.RoundRobin, lb.Random, lb.RingHash, lb.Maglev} {
		for _, w := range []struct {
			name string
			w    []uint32
		}{{"equal", nil}, {"weighted", weights}} {
			b.Run(fmt.Sprintf("%s/%s", pol, w.name), func(b *testing.B) {
				p := mustNew(b, lb.Config{Policy: pol}, endpoints(16, w.w...))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					h := uint64(0)
					for pb.Next() {
						h += 0x9e3779b97f4a7c15
						if _, ok := p.Pick(h); !ok {
							b.Fatal("no endpoint")
						}
					}
				})
			})
		}
	}
}

// BenchmarkPickExcept measures a retry pick that must avoid one endpoint.
func BenchmarkPickExcept(b *testing.B) {
	eps := endpoints(16)
	p := mustNew(b, lb.Config{Policy: lb.LeastRequest}, eps)
	tried := []string{eps[0].Addr}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		lb.PickExcept(p, uint64(i), tried)
	}
}

// BenchmarkHashHeader measures hashing a typical header value.
func BenchmarkHashHeader(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		lb.HashHeader("session-7f3a9c2e-4b1d-4e8f-9a6b-2c5d8e1f0a3b")
	}
}
