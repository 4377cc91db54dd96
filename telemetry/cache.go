package telemetry

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxSeries is how many distinct label combinations each group of
// Istio metrics (HTTP, TCP) holds. Records with a new combination beyond it
// go to the group's overflow series, whose every label is "overflow", and
// are counted in remora_telemetry_overflow_records_total{kind}.
const DefaultMaxSeries = 10000

// seriesCache maps label values to resolved metric children so the hot
// path does no hashing of label strings by prometheus, no slice building and
// no allocation. Reads go to an immutable map behind an atomic pointer; new
// keys go into dirty under mu and are published by copying once enough
// lookups missed, so copying costs O(1) amortized per miss (as sync.Map
// promotes its dirty map). Safe for concurrent use.
type seriesCache[K comparable, V any] struct {
	read    atomic.Pointer[map[K]*V]
	full    atomic.Bool // dirty reached max and is published
	max     int
	build   func(K) *V
	dropped prometheus.Counter
	// overflow is the series for keys beyond max, created on first use so
	// a scrape never shows an all-"overflow" series that nothing hit.
	newOverflow  func() *V
	overflowOnce sync.Once
	overflow     *V

	mu     sync.Mutex
	dirty  map[K]*V // every key, a superset of read. Caller must hold mu.
	misses int      // lookups that missed read since the last publish
}

// newSeriesCache returns a cache of at most max series built by build;
// keys beyond max get the series newOverflow builds and increment dropped.
func newSeriesCache[K comparable, V any](max int, build func(K) *V, newOverflow func() *V, dropped prometheus.Counter) *seriesCache[K, V] {
	c := &seriesCache[K, V]{max: max, build: build, newOverflow: newOverflow, dropped: dropped, dirty: map[K]*V{}}
	c.read.Store(&map[K]*V{})
	return c
}

// get returns the series for k, creating it if there is room.
func (c *seriesCache[K, V]) get(k *K) *V {
	if v, ok := (*c.read.Load())[*k]; ok {
		return v
	}
	if c.full.Load() {
		return c.over()
	}
	return c.slowGet(k)
}

// over counts a dropped key and returns the overflow series.
func (c *seriesCache[K, V]) over() *V {
	c.dropped.Inc()
	c.overflowOnce.Do(func() { c.overflow = c.newOverflow() })
	return c.overflow
}

// slowGet looks k up in dirty, adding it if there is room.
func (c *seriesCache[K, V]) slowGet(k *K) *V {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.dirty[*k]
	if !ok {
		if len(c.dirty) >= c.max {
			c.publish()
			c.full.Store(true)
			return c.over()
		}
		v = c.build(*k)
		c.dirty[*k] = v
	}
	c.misses++
	if c.misses > len(c.dirty)/8 {
		c.publish()
	}
	return v
}

// publish makes a copy of dirty the read map. Caller must hold c.mu.
func (c *seriesCache[K, V]) publish() {
	m := make(map[K]*V, len(c.dirty))
	for k, v := range c.dirty {
		m[k] = v
	}
	c.read.Store(&m)
	c.misses = 0
}

// len returns the number of series created so far.
func (c *seriesCache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.dirty)
}
