package outlier_test

import (
	"fmt"
	"testing"

	"github.com/remora-mesh/remora/internal/clock"
	"github.com/remora-mesh/remora/outlier"
)

func benchDetector() (*outlier.Detector, []string) {
	addrs := make([]string, 64)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.0.2.%d:8080", i)
	}
	return outlier.New(outlier.DefaultConfig(), clock.NewFake(epoch), addrs, nil), addrs
}

// BenchmarkRecord measures Record on the hot path (a success, and a 5xx that
// extends a run without completing it), serially and in parallel over 64
// endpoints. Each should report 0 allocs/op.
func BenchmarkRecord(b *testing.B) {
	for _, tt := range []struct {
		name   string
		status int
	}{{"200", 200}, {"503 alternating", 503}} {
		b.Run(tt.name, func(b *testing.B) {
			d, addrs := benchDetector()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				addr := addrs[i%len(addrs)]
				d.Record(addr, tt.status)
				if tt.status != 200 {
					d.Record(addr, 200) // keep runs below the threshold
				}
			}
		})
		b.Run(tt.name+"/parallel", func(b *testing.B) {
			d, addrs := benchDetector()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					addr := addrs[i%len(addrs)]
					d.Record(addr, tt.status)
					if tt.status != 200 {
						d.Record(addr, 200)
					}
				}
			})
		})
	}
}

// BenchmarkEjected measures the LB-side health check.
func BenchmarkEjected(b *testing.B) {
	d, addrs := benchDetector()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Ejected(addrs[i%len(addrs)])
	}
}
