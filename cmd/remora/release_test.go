package main

import (
	"runtime/metrics"
	"testing"
)

// released reads how much heap memory the runtime has returned to the OS.
func released() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink [][]byte

// TestReleaseLoadGarbage checks that the garbage of a large load goes back
// to the OS at once, and that a small heap is left alone.
func TestReleaseLoadGarbage(t *testing.T) {
	for range 64 { // 64 MB of load garbage, as 1,000 services leave
		sink = append(sink, make([]byte, 1<<20))
	}
	sink = nil
	before := released()
	if !releaseLoadGarbage() {
		t.Fatal("64 MB of garbage: releaseLoadGarbage did not collect")
	}
	if got := released() - before; got < 32<<20 {
		t.Errorf("released %d MB more to the OS; want at least 32 MB of the 64 MB dropped", got>>20)
	}
	if releaseLoadGarbage() {
		t.Error("small heap: releaseLoadGarbage collected anyway")
	}
}
