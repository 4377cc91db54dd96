package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// h1conns is the set of live HTTP/1 connections, for Shutdown.
type h1conns struct {
	mu       sync.Mutex
	m        map[*h1conn]struct{}
	draining atomic.Bool // Shutdown began: no new connections, answers say Connection: close
}

func (s *h1conns) add(hc *h1conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return false
	}
	if s.m == nil {
		s.m = map[*h1conn]struct{}{}
	}
	s.m[hc] = struct{}{}
	return true
}

func (s *h1conns) remove(hc *h1conn) {
	s.mu.Lock()
	delete(s.m, hc)
	s.mu.Unlock()
}

// closeIdle closes the idle connections and reports how many remain.
func (s *h1conns) closeIdle(all bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for hc := range s.m {
		if hc.state.CompareAndSwap(connIdle, connClosed) || all {
			_ = hc.c.Close()
			delete(s.m, hc)
		}
	}
	return len(s.m)
}

// shutdown stops new connections, closes idle ones, lets requests in
// flight finish (their responses say Connection: close) until ctx ends,
// then closes the rest.
func (s *h1conns) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	s.mu.Unlock()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.closeIdle(false) > 0 {
		select {
		case <-ctx.Done():
			s.closeIdle(true)
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// workers runs requests on a pool of goroutines that outlive them, so a
// request starts on a stack that has already grown to what the chain
// needs (a fresh goroutine per request spends about a tenth of the CPU
// growing its stack). Idle workers beyond the last minute's need exit.
type workers struct {
	tasks chan *h1req
	idle  atomic.Int32 // workers waiting for a task
	low   atomic.Int32 // the fewest idle since the last sweep
	once  sync.Once
}

// workerSweep is how often surplus idle workers are told to exit.
const workerSweep = time.Minute

// run hands t to an idle worker, or starts one.
func (p *workers) run(t *h1req) {
	p.once.Do(func() {
		p.tasks = make(chan *h1req)
		go p.sweep()
	})
	select {
	case p.tasks <- t:
	default:
		go p.work(t)
	}
}

func (p *workers) work(t *h1req) {
	for t != nil {
		t.hc.handle(t)
		p.idle.Add(1)
		t = <-p.tasks
		if n := p.idle.Add(-1); n < p.low.Load() {
			p.low.Store(n)
		}
	}
}

// sweep stops, once a period, as many workers as stayed idle throughout
// it (a nil task tells one to exit).
func (p *workers) sweep() {
	for range time.Tick(workerSweep) {
		surplus := p.low.Load()
		p.low.Store(p.idle.Load())
		for range surplus {
			select {
			case p.tasks <- nil:
			default:
			}
		}
	}
}
