package lb

import (
	"fmt"
	"math"
)

// maglev is Envoy's Maglev table: each endpoint walks its own permutation of
// the table (offset and skip from xxHash64 of its address with seeds 0 and
// 1) claiming free slots, heavier endpoints more often, until the table is
// full. A request's hash modulo the table size indexes the table: lock-free.
type maglev struct {
	eps   []Endpoint
	table []uint32
}

var _ Picker = (*maglev)(nil)

type maglevEntry struct {
	offset, skip, next uint64
	weight, target     uint64
}

func newMaglev(eps []Endpoint, size uint64) (*maglev, error) {
	if size == 0 {
		size = DefaultMaglevTableSize
	}
	if size >= MaxMaglevTableSize || !isPrime(size) {
		return nil, fmt.Errorf("lb: maglev table size %d must be a prime below %d", size, MaxMaglevTableSize)
	}
	entries := make([]maglevEntry, len(eps))
	var maxW uint64
	for i, e := range eps {
		entries[i] = maglevEntry{
			offset: XXHash64(e.Addr, 0) % size,
			skip:   XXHash64(e.Addr, 1)%(size-1) + 1,
			weight: e.weight(),
		}
		maxW = max(maxW, e.weight())
	}
	const free = math.MaxUint32
	table := make([]uint32, size)
	for i := range table {
		table[i] = free
	}
	filled := uint64(0)
	for iter := uint64(1); filled < size; iter++ {
		for i := range entries {
			if filled == size {
				break
			}
			m := &entries[i]
			// An endpoint of weight maxW/k claims a slot every k rounds.
			if iter*m.weight < m.target {
				continue
			}
			m.target += maxW
			c := (m.offset + m.skip*m.next) % size
			for table[c] != free {
				m.next++
				c = (m.offset + m.skip*m.next) % size
			}
			table[c] = uint32(i)
			m.next++
			filled++
		}
	}
	return &maglev{eps: eps, table: table}, nil
}

func (m *maglev) Pick(hash uint64) (Endpoint, bool) {
	return m.eps[m.table[hash%uint64(len(m.table))]], true
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
