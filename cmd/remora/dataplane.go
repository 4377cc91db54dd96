package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/outlier"
	"github.com/remora-mesh/remora/proxy"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// startDataPlane builds the live clusters, telemetry and the HTTP chain.
func (p *process) startDataPlane() error {
	alog, err := telemetry.OpenAccessLog(p.f.accessLog, p.metrics)
	if err != nil {
		return fmt.Errorf("--access-log: %w", err)
	}
	p.alog = alog
	p.tel = telemetry.New(p.metrics, alog)
	opts := upstream.Options{Logger: p.log, OnEjection: func(cluster string, ev outlier.Event) {
		if ev.Ejected {
			p.metrics.OutlierEjections.WithLabelValues(cluster).Inc()
		}
		p.log.Info("outlier", zap.String("cluster", cluster), zap.String("host", ev.Addr), zap.Bool("ejected", ev.Ejected))
	}}
	if p.f.dnsServer != "" {
		opts.Resolver = upstream.NewResolver(p.f.dnsServer)
	}
	p.upstream = upstream.NewManager(opts)
	p.metrics.WatchOverflows(func(yield func(cluster, breaker string, total uint64)) {
		p.upstream.Overflows(func(name string, c upstream.OverflowCounts) {
			yield(name, telemetry.BreakerMaxConnections, c.Cx)
			yield(name, telemetry.BreakerMaxPendingRequests, c.Pending)
			yield(name, telemetry.BreakerMaxRequests, c.Rq)
			yield(name, telemetry.BreakerMaxRetries, c.Retry)
		})
	})
	p.http = &proxy.HTTPServer{Store: p.store, Upstream: p.upstream, Telemetry: p.tel,
		Gateway: p.f.role == "gateway", Local: p.localLabels(), Resolver: opts.Resolver,
		ShadowSuffix: p.f.compat == "1.27"}
	return nil
}

// drain stops accepting, tells keep-alive clients to close (Connection:
// close, HTTP/2 GOAWAY) and lets requests in flight finish, all at once
// under one --drain-duration deadline; what still runs then is reset.
// With --exit-on-zero-active-connections=false it then waits out the rest
// of the drain duration, as Istio's agent does.
func (p *process) drain(stopProxy func(context.Context), servers []*http.Server) {
	start := time.Now()
	p.log.Info("draining", zap.Duration("drain", p.f.drainDuration))
	ctx, cancel := context.WithTimeout(context.Background(), p.f.drainDuration)
	defer cancel()
	var wg sync.WaitGroup
	stops := []func(){func() { stopProxy(ctx) }, func() { _ = p.http.Shutdown(ctx) }}
	for _, hs := range servers {
		stops = append(stops, func() { _ = hs.Shutdown(ctx) })
	}
	for _, stop := range stops {
		wg.Add(1)
		go func() { defer wg.Done(); stop() }()
	}
	wg.Wait()
	if !p.f.exitOnZero {
		<-ctx.Done()
	}
	p.log.Info("drained", zap.Duration("took", time.Since(start)))
}

// drainListeners is admin's /drain_listeners: stop accepting, close
// keep-alive connections after their requests, and report not ready; the
// process keeps running until SIGTERM or /quitquitquit.
func (p *process) drainListeners() {
	p.drainMu.Lock()
	stop, already := p.stopListeners, p.drained
	p.drained = true
	p.drainMu.Unlock()
	if already || stop == nil {
		return
	}
	p.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), p.f.drainDuration)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range []func(){func() { stop(ctx) }, func() { _ = p.http.Shutdown(ctx) }} {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	wg.Wait()
	p.log.Info("listeners drained")
}

// stopDataPlane closes the upstream pools and flushes the access log.
func (p *process) stopDataPlane() {
	p.upstream.Close()
	if p.alog != nil {
		_ = p.alog.Close()
	}
}

// localLabels are this workload's Istio labels: the source of its
// outbound requests.
func (p *process) localLabels() telemetry.Labels {
	app, version := p.f.labels["app"], p.f.labels["version"]
	workload := app
	if workload != "" && version != "" {
		workload = app + "-" + version
	}
	return telemetry.Labels{
		Reporter: telemetry.ReporterSource,
		Source: telemetry.Peer{Workload: workload, Namespace: p.f.namespace, App: app, Version: version,
			CanonicalService: app, CanonicalRevision: version},
	}
}
