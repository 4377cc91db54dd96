package lb

import (
	"container/heap"
	"sync"
)

// newLeastRequest returns Envoy's least-request picker: with equal weights,
// power of two choices over the live Active counts; with unequal weights,
// earliest-deadline-first scheduling on weight/(active+1), Envoy's
// active_request_bias 1.0.
func newLeastRequest(eps []Endpoint, rnd func() uint64) Picker {
	if equalWeights(eps) {
		return &p2c{eps: eps, rnd: rnd}
	}
	return newWeightedLeastRequest(eps)
}

// p2c draws ChoiceCount endpoints at random, with replacement, and keeps the
// one with the fewest active requests; ties keep the earlier draw, as Envoy
// does. It is lock-free.
type p2c struct {
	eps []Endpoint
	rnd func() uint64
}

var _ Picker = (*p2c)(nil)

func (p *p2c) Pick(uint64) (Endpoint, bool) {
	n := uint64(len(p.eps))
	best := p.eps[below(p.rnd(), n)]
	bestActive := best.active()
	for range ChoiceCount - 1 {
		c := p.eps[below(p.rnd(), n)]
		if a := c.active(); a < bestActive {
			best, bestActive = c, a
		}
	}
	return best, true
}

// weightedLR is Envoy's EDF scheduler for least request with unequal
// weights. Each endpoint waits in a queue ordered by deadline; a pick takes
// the earliest, then requeues it at deadline + 1/effective weight, where the
// effective weight is weight/(active+1) read at that moment. The queue is
// mutable, so picks hold mu for O(log n).
type weightedLR struct {
	mu sync.Mutex
	q  edfQueue // Guarded by mu.
}

var _ Picker = (*weightedLR)(nil)

func newWeightedLeastRequest(eps []Endpoint) *weightedLR {
	w := &weightedLR{q: edfQueue{eps: eps, items: make([]edfItem, len(eps))}}
	for i, e := range eps {
		w.q.items[i] = edfItem{deadline: 1 / float64(e.weight()), idx: uint32(i)}
	}
	heap.Init(&w.q)
	return w
}

func (w *weightedLR) Pick(uint64) (Endpoint, bool) {
	w.mu.Lock()
	top := &w.q.items[0]
	e := w.q.eps[top.idx]
	// Envoy reads the count before the chosen request starts.
	eff := float64(e.weight()) / float64(e.active()+1)
	top.deadline += 1 / eff
	heap.Fix(&w.q, 0)
	w.mu.Unlock()
	return e, true
}

// edfItem is one endpoint's place in an EDF queue. Equal deadlines go to the
// lower index, which keeps the order deterministic.
type edfItem struct {
	deadline float64
	idx      uint32
}

// edfQueue is a min-heap of edfItem by deadline. It implements heap.Interface
// without allocating: Push and Pop are never called after Init.
type edfQueue struct {
	eps   []Endpoint
	items []edfItem
}

func (q *edfQueue) Len() int { return len(q.items) }

func (q *edfQueue) Less(i, j int) bool {
	a, b := q.items[i], q.items[j]
	if a.deadline != b.deadline {
		return a.deadline < b.deadline
	}
	return a.idx < b.idx
}

func (q *edfQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }

func (q *edfQueue) Push(x any) { q.items = append(q.items, x.(edfItem)) }

func (q *edfQueue) Pop() any {
	it := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return it
}
