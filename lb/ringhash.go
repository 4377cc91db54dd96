package lb

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// ringHash is Envoy's ketama-style ring: each endpoint owns hashes of
// "ADDR_0", "ADDR_1", ... (xxHash64), in number proportional to its weight;
// a request's hash goes to the first ring entry at or after it, wrapping
// around. Lookups are a binary search over an immutable slice: lock-free.
type ringHash struct {
	eps  []Endpoint
	ring []ringEntry // sorted by hash
}

type ringEntry struct {
	hash uint64
	idx  uint32
}

var _ Picker = (*ringHash)(nil)

func newRingHash(eps []Endpoint, minSize, maxSize uint64) (*ringHash, error) {
	if minSize == 0 {
		minSize = DefaultMinimumRingSize
	}
	if maxSize == 0 {
		maxSize = DefaultMaximumRingSize
	}
	if minSize > maxSize {
		return nil, fmt.Errorf("lb: ring hash minimum size %d exceeds maximum %d", minSize, maxSize)
	}
	var total uint64
	minW := uint64(math.MaxUint64)
	for _, e := range eps {
		total += e.weight()
		minW = min(minW, e.weight())
	}
	// As Envoy: scale so the lightest endpoint gets a whole number of
	// entries and the ring holds at least minSize, capped at maxSize.
	minNorm := float64(minW) / float64(total)
	scale := min(math.Ceil(minNorm*float64(minSize))/minNorm, float64(maxSize))
	r := &ringHash{eps: eps, ring: make([]ringEntry, 0, uint64(math.Ceil(scale)))}
	var current, target float64
	buf := make([]byte, 0, 64)
	for i, e := range eps {
		target += scale * float64(e.weight()) / float64(total)
		buf = append(append(buf[:0], e.Addr...), '_')
		prefix := len(buf)
		for n := uint64(0); current < target; n++ {
			buf = strconv.AppendUint(buf[:prefix], n, 10)
			r.ring = append(r.ring, ringEntry{hash: XXHash64(string(buf), 0), idx: uint32(i)})
			current++
		}
	}
	slices.SortFunc(r.ring, func(a, b ringEntry) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.idx) - int(b.idx)
	})
	return r, nil
}

func (r *ringHash) Pick(hash uint64) (Endpoint, bool) {
	lo, hi := 0, len(r.ring)
	for lo < hi { // first entry with entry.hash >= hash
		m := int(uint(lo+hi) >> 1)
		if r.ring[m].hash < hash {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.ring) {
		lo = 0
	}
	return r.eps[r.ring[lo].idx], true
}
