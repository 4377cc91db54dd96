package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
)

// twoClusters is snap's cluster plus a copy named for subset "b", both
// with policy p.
func twoClusters(t *testing.T, p snapshot.Policy, addr string) *snapshot.Snapshot {
	s := snap(t, config.HTTP, p, addr)
	b := *s.Clusters[clusterName("")]
	b.Name, b.Subset = clusterName("b"), "b"
	s.Clusters[b.Name] = &b
	return s
}

// TestSweepGroupShared checks that clusters with one outlier interval
// share one sweep ticker that sweeps them all, that a cluster moves to
// another ticker when its interval changes, and that a ticker stops when
// its last cluster leaves.
func TestSweepGroupShared(t *testing.T) {
	bad, _, _ := backend(t, status(503))
	m, clk, tk := newTestManager(t)
	started := 0
	m.opts.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
		started++
		return tk.new(d)
	}
	m.Update(twoClusters(t, ejectPolicy(), bad))
	if started != 1 {
		t.Fatalf("two clusters with one interval started %d tickers; want 1", started)
	}
	a, b := m.Cluster(clusterName("")), m.Cluster(clusterName("b"))
	for _, c := range []*Cluster{a, b} {
		for range 3 {
			get(context.Background(), c, AttemptOptions{})
		}
		if e, _ := ejected(c, bad); !e {
			t.Fatalf("%s: not ejected after 3 503s", c.Name())
		}
	}
	clk.Advance(30 * time.Second)
	tk.tick()
	for _, c := range []*Cluster{a, b} {
		if e, _ := ejected(c, bad); e {
			t.Errorf("%s: still ejected after the shared tick", c.Name())
		}
	}

	p := ejectPolicy()
	p.OutlierDetection.Interval = dur(time.Second)
	s := twoClusters(t, ejectPolicy(), bad)
	s.Clusters[clusterName("b")].Policy = p
	m.Update(s)
	if started != 2 {
		t.Fatalf("a second interval: %d tickers started; want 2", started)
	}
	m.Update(snap(t, config.HTTP, ejectPolicy(), bad)) // b goes away
	select {
	case <-tk.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the 1s ticker did not stop when its last cluster left")
	}
	select {
	case <-tk.stopped:
		t.Fatal("the 10s ticker stopped while a cluster still uses it")
	default:
	}
}
