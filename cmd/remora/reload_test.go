package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/remora-mesh/remora/config"
)

const seVS = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts: [reviews]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`

// TestReloadKeepsLastGood writes a good config, then a broken one: the
// snapshot in use stays the good one and the error counter rises; a good
// write after that is published.
func TestReloadKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "se.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(seVS)
	p := newProcess(&runFlags{config: dir, namespace: "default", domain: "cluster.local"}, zap.NewNop())
	loads := make(chan struct{}, 8)
	w := &config.Watcher{Dir: dir, OnLoad: func(s *config.Set, d config.Diagnostics, err error) {
		p.onLoad(s, d, err)
		loads <- struct{}{}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wait := func() {
		t.Helper()
		select {
		case <-loads:
		case <-time.After(2 * time.Second):
			t.Fatal("no reload within 2s")
		}
	}
	wait()
	good := p.store.Load()
	if good == nil || good.Registry.Service("reviews.default.svc.cluster.local") == nil {
		t.Fatalf("first snapshot lacks reviews: %v", good)
	}
	errs := func() float64 { return testutil.ToFloat64(p.metrics.ConfigReloads.WithLabelValues("error")) }
	before := errs()
	write(seVS + "  bogus: 1\n")
	wait()
	if got := p.store.Load(); got != good {
		t.Errorf("snapshot changed to %v after an invalid write; want the last good one kept", got)
	}
	if got := errs(); got != before+1 {
		t.Errorf("remora_config_reloads_total{result=error} = %v; want %v", got, before+1)
	}
	write(seVS + "---\n" + seVS)
	wait() // duplicate resource: still an error
	if p.store.Load() != good {
		t.Errorf("duplicate resource replaced the snapshot")
	}
	write(seVS)
	wait()
	if got := p.store.Load(); got == good || got.Version != good.Version+1 {
		t.Errorf("good write not published: version %d, want %d", got.Version, good.Version+1)
	}
}
