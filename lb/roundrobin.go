package lb

import (
	"container/heap"
	"slices"
	"sync/atomic"
)

// maxSchedule bounds a weighted round-robin schedule. Weights whose reduced
// sum exceeds it are scaled down to fit, each keeping at least one slot, so
// proportions stay within len(eps)/maxSchedule of the configured ones.
const maxSchedule = 1 << 16

// roundRobin walks a precomputed schedule with an atomic cursor, so picks are
// lock-free. With equal weights the schedule is the endpoints in order; with
// unequal weights it is one cycle of Envoy's EDF order, in which an endpoint
// of weight w appears w times per cycle, spread out rather than bunched.
type roundRobin struct {
	eps   []Endpoint
	sched []uint32 // indexes into eps; nil means eps in order
	next  atomic.Uint64
}

var _ Picker = (*roundRobin)(nil)

// newRoundRobin starts the cursor at a random place in the cycle, as each
// Envoy worker does, so that proxies that rebuild together do not all send
// their next request to the same endpoint.
func newRoundRobin(eps []Endpoint, rnd func() uint64) *roundRobin {
	r := &roundRobin{eps: eps}
	if !equalWeights(eps) {
		r.sched = edfSchedule(eps)
	}
	r.next.Store(rnd())
	return r
}

func (r *roundRobin) Pick(uint64) (Endpoint, bool) {
	n := r.next.Add(1) - 1
	if r.sched == nil {
		return r.eps[n%uint64(len(r.eps))], true
	}
	return r.eps[r.sched[n%uint64(len(r.sched))]], true
}

// edfSchedule returns one cycle of earliest-deadline-first picks over eps'
// weights reduced by their greatest common divisor (and scaled down if the
// cycle would exceed maxSchedule).
func edfSchedule(eps []Endpoint) []uint32 {
	w := scheduleWeights(eps)
	var total uint64
	for _, x := range w {
		total += x
	}
	q := &edfQueue{items: make([]edfItem, len(w))}
	for i, x := range w {
		q.items[i] = edfItem{deadline: 1 / float64(x), idx: uint32(i)}
	}
	heap.Init(q)
	sched := make([]uint32, 0, total)
	count := make([]uint64, len(w))
	for range total {
		i := q.items[0].idx
		sched = append(sched, i)
		count[i]++
		// Exact deadlines (count+1)/w keep the cycle's counts equal to the
		// weights; accumulated float steps could drift by one.
		q.items[0].deadline = float64(count[i]+1) / float64(w[i])
		heap.Fix(q, 0)
	}
	return sched
}

// scheduleWeights returns eps' weights divided by their GCD, scaled to keep
// their sum at most max(maxSchedule, len(eps)).
func scheduleWeights(eps []Endpoint) []uint64 {
	w := make([]uint64, len(eps))
	var g, total uint64
	for i, e := range eps {
		w[i] = e.weight()
		g = gcd(g, w[i])
	}
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	limit := uint64(max(maxSchedule, len(eps)))
	if total <= limit {
		return w
	}
	scale := float64(limit-uint64(len(w))) / float64(total)
	for i := range w {
		w[i] = 1 + uint64(float64(w[i])*scale)
	}
	return w
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// random picks uniformly, or in proportion to weight through a binary search
// over cumulative weights. It is lock-free.
type random struct {
	eps []Endpoint
	cum []uint64 // cum[i] is the sum of weights of eps[:i+1]; nil if equal
	rnd func() uint64
}

var _ Picker = (*random)(nil)

func newRandom(eps []Endpoint, rnd func() uint64) *random {
	r := &random{eps: eps, rnd: rnd}
	if !equalWeights(eps) {
		r.cum = make([]uint64, len(eps))
		var sum uint64
		for i, e := range eps {
			sum += e.weight()
			r.cum[i] = sum
		}
	}
	return r
}

func (r *random) Pick(uint64) (Endpoint, bool) {
	if r.cum == nil {
		return r.eps[below(r.rnd(), uint64(len(r.eps)))], true
	}
	x := below(r.rnd(), r.cum[len(r.cum)-1])
	i, _ := slices.BinarySearch(r.cum, x+1) // first cumulative weight > x
	return r.eps[i], true
}
