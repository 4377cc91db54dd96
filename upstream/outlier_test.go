package upstream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
)

// ejectPolicy is consecutive5xxErrors 3, maxEjectionPercent 100, interval
// 10s, base ejection 30s.
func ejectPolicy() snapshot.Policy {
	return snapshot.Policy{OutlierDetection: &config.OutlierDetection{
		Consecutive5xxErrors: u32(3), MaxEjectionPercent: 100,
		Interval: dur(10 * time.Second), BaseEjectionTime: dur(30 * time.Second),
	}}
}

// ejected reports whether addr is ejected per the cluster's status.
func ejected(c *Cluster, addr string) (bool, uint32) {
	for _, h := range c.Status().Hosts {
		if h.Address == addr {
			return h.Ejected, h.Ejections
		}
	}
	return false, 0
}

// driveBad sends requests until bad has answered n times, failing after
// a bounded number; it returns the 503s seen.
func driveBad(t *testing.T, c *Cluster, bad string, n int) {
	t.Helper()
	seen := 0
	for i := 0; seen < n; i++ {
		if i > 300 {
			t.Fatalf("bad endpoint picked only %d times in 300 requests", seen)
		}
		code, h, err := get(context.Background(), c, AttemptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if h.Addr == bad {
			seen++
			if code != 503 {
				t.Fatalf("bad endpoint answered %d", code)
			}
		}
	}
}

// neverPicked checks 60 requests avoid bad.
func neverPicked(t *testing.T, c *Cluster, bad string) {
	t.Helper()
	for range 60 {
		code, h, err := get(context.Background(), c, AttemptOptions{})
		if err != nil || code != 200 || h.Addr == bad {
			t.Fatalf("ejected endpoint picked: %v %d %v", h, code, err)
		}
	}
}

func TestEjectionSkipsHostAndBacksOff(t *testing.T) {
	good1, _, _ := backend(t, status(200))
	good2, _, _ := backend(t, status(200))
	bad, _, _ := backend(t, status(503))
	m, clk, tk := newTestManager(t)
	m.Update(snap(t, config.HTTP, ejectPolicy(), good1, good2, bad))
	c := m.Cluster(clusterName(""))

	driveBad(t, c, bad, 3)
	if e, n := ejected(c, bad); !e || n != 1 {
		t.Fatalf("after 3 consecutive 503s: ejected %v, ejections %d; want true, 1", e, n)
	}
	neverPicked(t, c, bad)

	clk.Advance(30 * time.Second)
	tk.tick()
	if e, _ := ejected(c, bad); e {
		t.Fatal("still ejected after baseEjectionTime")
	}
	driveBad(t, c, bad, 3)
	if e, n := ejected(c, bad); !e || n != 2 {
		t.Fatalf("second run: ejected %v, ejections %d; want true, 2", e, n)
	}
	clk.Advance(30 * time.Second)
	tk.tick()
	if e, _ := ejected(c, bad); !e {
		t.Fatal("second ejection ended after 1×baseEjectionTime; want 2×")
	}
	clk.Advance(30 * time.Second)
	tk.tick()
	if e, _ := ejected(c, bad); e {
		t.Fatal("still ejected after 2×baseEjectionTime")
	}
}

func TestAllEjectedNoHealthyUpstream(t *testing.T) {
	bad, _, _ := backend(t, status(503))
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, ejectPolicy(), bad))
	c := m.Cluster(clusterName(""))
	for range 3 {
		if code, _, err := get(context.Background(), c, AttemptOptions{}); code != 503 || err != nil {
			t.Fatalf("get: %d %v", code, err)
		}
	}
	if _, _, err := get(context.Background(), c, AttemptOptions{}); !errors.Is(err, ErrNoHealthyUpstream) {
		t.Fatalf("all ejected, minHealthPercent 0: %v; want ErrNoHealthyUpstream", err)
	}
	// A panic threshold above the healthy share sends traffic anyway.
	p := ejectPolicy()
	p.OutlierDetection.MinHealthPercent = 50
	m.Update(snap(t, config.HTTP, p, bad))
	if code, _, err := get(context.Background(), c, AttemptOptions{}); err != nil || code != 503 {
		t.Fatalf("in panic: %d %v; want the 503 answer", code, err)
	}
	if !c.Status().InPanic {
		t.Error("status does not report panic")
	}
}

func TestStateSurvivesUpdate(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	good, _, _ := backend(t, gated(entered, release))
	bad, _, _ := backend(t, status(503))
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, ejectPolicy(), bad))
	c := m.Cluster(clusterName(""))
	for range 3 {
		get(context.Background(), c, AttemptOptions{})
	}
	// Reload with another DR (new limits, same outlier block) and a new
	// endpoint: the ejection and the cluster object survive.
	p := ejectPolicy()
	p.ConnectionPool = &config.ConnectionPoolSettings{TCP: &config.TCPSettings{MaxConnections: 7}}
	m.Update(snap(t, config.HTTP, p, bad, good))
	if m.Cluster(clusterName("")) != c {
		t.Fatal("Update replaced the live cluster")
	}
	if e, _ := ejected(c, bad); !e {
		t.Fatal("ejection lost across a DestinationRule reload")
	}
	if got := c.Limits().MaxConnections; got != 7 {
		t.Errorf("maxConnections = %d after reload; want 7", got)
	}
	done := make(chan error)
	go func() { _, _, err := get(context.Background(), c, AttemptOptions{}); done <- err }()
	<-entered // one request in flight to good
	m.Update(snap(t, config.HTTP, ejectPolicy(), bad, good))
	var active int64
	for _, h := range c.Status().Hosts {
		if h.Address == good {
			active = h.RqActive
		}
	}
	if active != 1 {
		t.Errorf("rq_active of %s after reload = %d; want 1", good, active)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Removing the endpoint drops its state and closes its idle
	// connection; bad keeps its own.
	before := c.Status().CxActive
	m.Update(snap(t, config.HTTP, ejectPolicy(), bad))
	if st := c.Status(); len(st.Hosts) != 1 || st.CxActive != before-1 {
		t.Errorf("after removing %s: %d hosts, cx_active %d; want 1, %d", good, len(st.Hosts), st.CxActive, before-1)
	}
}

func TestClusterRemovedStopsTicker(t *testing.T) {
	bad, _, _ := backend(t, status(503))
	m, _, tk := newTestManager(t)
	m.Update(snap(t, config.HTTP, ejectPolicy(), bad))
	m.Cluster(clusterName("")) // in use: its sweep loop runs
	tk.tick()
	m.Update(&snapshot.Snapshot{Clusters: map[string]*snapshot.Cluster{}})
	if m.Cluster(clusterName("")) != nil {
		t.Fatal("cluster still present")
	}
	select {
	case <-tk.stopped:
	case <-time.After(10 * time.Second):
		t.Error("sweep ticker not stopped after the cluster went away")
	}
}
