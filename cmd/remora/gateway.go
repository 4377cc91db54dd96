package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/proxy"
	"github.com/remora-mesh/remora/snapshot"
)

// startGatewayListeners serves the gateway role's listeners — one per
// port of the Gateways whose selector matches --labels — and keeps them
// in step with each published snapshot. It hooks w's OnLoad, so every
// listener of the first snapshot is bound before the load counts as
// done (readiness follows it); a port that cannot be bound then ends the
// process through errc, and on a later reload is logged and retried.
// The returned stop runs next, then drains the gateway listeners until
// its context ends. The sidecar role returns next unchanged.
func (p *process) startGatewayListeners(w *config.Watcher, errc chan<- error, next func(context.Context)) (stop func(context.Context)) {
	if p.f.role != "gateway" {
		return next
	}
	g := &proxy.Gateway{Store: p.store, Upstream: p.upstream, HTTP: p.http, Log: p.log,
		BindAddress: p.f.bindAddress, OnListen: p.announce, Drain: p.f.drainDuration, Telemetry: p.tel, Local: p.localLabels()}
	prev := w.OnLoad
	var last *snapshot.Snapshot // the snapshot the listeners follow
	w.OnLoad = func(s *config.Set, d config.Diagnostics, err error) {
		prev(s, d, err)
		snap := p.store.Load()
		if snap == nil || snap == last { // none yet, or the load was rejected
			return
		}
		first := last == nil
		last = snap
		if err := g.Update(snap); err != nil {
			p.log.Error("gateway listeners", zap.Error(err))
			if first {
				select {
				case errc <- err:
				default:
				}
			}
		}
	}
	return func(ctx context.Context) {
		next(ctx)
		_ = g.Shutdown(ctx)
	}
}
