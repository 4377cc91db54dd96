package telemetry

import (
	"testing"
	"time"
)

// TestAppendTime matches time.Format across second boundaries and zones.
func TestAppendTime(t *testing.T) {
	zone := time.FixedZone("x", 5*3600+1800)
	base := time.Date(2026, 12, 2, 3, 59, 59, 998_000_000, zone)
	for i := range 5000 {
		tm := base.Add(time.Duration(i) * 997 * time.Microsecond)
		want := tm.UTC().Format("2006-01-02T15:04:05.000Z")
		if got := string(appendTime(nil, tm)); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}
