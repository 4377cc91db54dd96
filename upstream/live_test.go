package upstream

import (
	"context"
	"fmt"
	"strconv"
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

// countTickers makes m's sweep tickers tk's and counts them.
func countTickers(m *Manager, tk *ticker) *int {
	started := new(int)
	m.opts.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
		*started++
		return tk.new(d)
	}
	return started
}

// TestSweepGroupShared checks that clusters with one outlier interval
// share one sweep ticker that sweeps them all, that a cluster moves to
// another ticker when its interval changes, and that a ticker stops when
// its last cluster leaves.
func TestSweepGroupShared(t *testing.T) {
	bad, _, _ := backend(t, status(503))
	m, clk, tk := newTestManager(t)
	started := countTickers(m, tk)
	m.Update(twoClusters(t, ejectPolicy(), bad))
	a, b := m.Cluster(clusterName("")), m.Cluster(clusterName("b"))
	if *started != 1 {
		t.Fatalf("two clusters with one interval started %d tickers; want 1", *started)
	}
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
	if *started != 2 {
		t.Fatalf("a second interval: %d tickers started; want 2", *started)
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

// TestClustersLiveOnFirstUse checks that Update makes no cluster live
// (no sweep ticker) until Cluster asks for it, that Status reports every
// cluster of the snapshot either way, identically, and that a cluster the
// snapshot lacks, or any after Close, is nil.
func TestClustersLiveOnFirstUse(t *testing.T) {
	addr, _, _ := backend(t, status(200))
	m, _, tk := newTestManager(t)
	started := countTickers(m, tk)
	m.Update(twoClusters(t, ejectPolicy(), addr))
	if *started != 0 {
		t.Errorf("Update started %d sweep tickers before any use; want 0", *started)
	}
	before := m.Status()
	if len(before) != 2 || before[0].Name != clusterName("b") || before[1].Name != clusterName("") {
		t.Fatalf("Status before use lists %+v; want both clusters, sorted by name", before)
	}
	c := m.Cluster(clusterName("b"))
	if c == nil || m.Cluster(clusterName("b")) != c || *started != 1 {
		t.Fatalf("Cluster: %v, %d tickers; want one live cluster, found again, 1 ticker", c, *started)
	}
	after := m.Status()
	if got, want := fmt.Sprintf("%+v", after[0]), fmt.Sprintf("%+v", before[0]); got != want {
		t.Errorf("Status of the live cluster:\n%s\nwant as before use:\n%s", got, want)
	}
	if code, _, err := get(context.Background(), c, AttemptOptions{}); err != nil || code != 200 {
		t.Errorf("request through the activated cluster: %d %v", code, err)
	}
	if m.Cluster(clusterName("nope")) != nil {
		t.Error("Cluster of a name the snapshot lacks is not nil")
	}
	m.Close()
	if m.Cluster(clusterName("")) != nil {
		t.Error("Cluster after Close made a cluster live")
	}
}

// TestDNSClusterLiveAtUpdate checks that a DNS cluster resolves from the
// Update on, before any request, as Envoy's do.
func TestDNSClusterLiveAtUpdate(t *testing.T) {
	m, _, _ := newTestManager(t)
	s := snap(t, config.HTTP, snapshot.Policy{}, "127.0.0.1:9")
	s.Clusters[clusterName("")].Service.Resolution = "DNS"
	m.Update(s)
	m.mu.Lock()
	c := m.live[clusterName("")]
	m.mu.Unlock()
	if c == nil {
		t.Fatal("DNS cluster not live after Update")
	}
}

// TestOverflowsLiveOnly checks that Overflows reports the clusters in use,
// with their counters, and skips the ones never used.
func TestOverflowsLiveOnly(t *testing.T) {
	m, _, _ := newTestManager(t)
	p := snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{HTTP: &config.HTTPSettings{MaxRetries: 1}}}
	m.Update(twoClusters(t, p, "127.0.0.1:9"))
	c := m.Cluster(clusterName("b"))
	release, _ := c.TryRetry()
	defer release()
	if _, ok := c.TryRetry(); ok {
		t.Fatal("second retry allowed past maxRetries 1")
	}
	got := map[string]OverflowCounts{}
	m.Overflows(func(name string, oc OverflowCounts) { got[name] = oc })
	want := map[string]OverflowCounts{clusterName("b"): {Retry: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Overflows = %v; want %v", got, want)
	}
}

// BenchmarkCluster is the per-request lookup of a cluster in use, with 4
// and with 4,000 clusters live.
func BenchmarkCluster(b *testing.B) {
	for _, n := range []int{4, 4000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s := &snapshot.Snapshot{Clusters: map[string]*snapshot.Cluster{}}
			names := make([]string, n)
			for i := range names {
				names[i] = snapshot.ClusterName(9080, "v1", "svc-"+strconv.Itoa(i)+".default.svc.cluster.local")
				s.Clusters[names[i]] = &snapshot.Cluster{Name: names[i]}
			}
			m := NewManager(Options{})
			defer m.Close()
			m.Update(s)
			for _, name := range names {
				m.Cluster(name)
			}
			for i := 0; b.Loop(); i++ {
				if m.Cluster(names[i%n]) == nil {
					b.Fatal("cluster missing")
				}
			}
		})
	}
}

// TestActivatedClustersPublished checks that clusters made live reach the
// lock-free read map after a bounded number of locked lookups, and that
// an Update publishes them all.
func TestActivatedClustersPublished(t *testing.T) {
	s := &snapshot.Snapshot{Clusters: map[string]*snapshot.Cluster{}}
	var names []string
	for i := range 100 {
		n := snapshot.ClusterName(9080, "", "svc-"+strconv.Itoa(i)+".default.svc.cluster.local")
		s.Clusters[n] = &snapshot.Cluster{Name: n}
		names = append(names, n)
	}
	m := NewManager(Options{})
	defer m.Close()
	m.Update(s)
	for _, n := range names {
		m.Cluster(n)
	}
	last := names[len(names)-1]
	for range len(names)/8 + 1 {
		m.Cluster(last)
	}
	if (*m.read.Load())[last] == nil {
		t.Errorf("%s still unpublished after %d lookups", last, len(names)/8+1)
	}
	m.Update(s)
	if got := len(*m.read.Load()); got != len(names) {
		t.Errorf("after Update the read map holds %d clusters; want %d", got, len(names))
	}
}
