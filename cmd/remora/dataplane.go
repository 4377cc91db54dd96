package main

import (
	"context"
	"fmt"

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
	p.http = &proxy.HTTPServer{Store: p.store, Upstream: p.upstream, Telemetry: p.tel, Log: p.log,
		Gateway: p.f.role == "gateway", Local: p.localLabels()}
	return nil
}

// stopDataPlane tells keep-alive clients to go, lets requests in flight
// finish within the drain duration, then closes pools and flushes the
// access log.
func (p *process) stopDataPlane() {
	ctx, cancel := context.WithTimeout(context.Background(), p.f.drainDuration)
	defer cancel()
	if p.http != nil {
		_ = p.http.Shutdown(ctx)
	}
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
