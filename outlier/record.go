package outlier

import "time"

// Reason is why an endpoint was ejected. The zero value means none.
type Reason uint8

// The ejection reasons Istio enables.
const (
	// Consecutive5xx is a run of Consecutive5xxErrors.
	Consecutive5xx Reason = iota + 1
	// ConsecutiveGatewayFailure is a run of ConsecutiveGatewayErrors.
	ConsecutiveGatewayFailure
	// ConsecutiveLocalOriginFailure is a run of
	// ConsecutiveLocalOriginFailures (split mode only).
	ConsecutiveLocalOriginFailure

	numReasons = iota // the count of reasons above
)

var reasonNames = [...]string{"", "consecutive_5xx", "consecutive_gateway_failure", "consecutive_local_origin_failure"}

// String returns Envoy's name for the reason, e.g. "consecutive_5xx".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Local is a locally originated result: something that happened to the
// connection or request on remora's side rather than an upstream answer.
type Local uint8

// The local-origin results, as Envoy's router and TCP proxy report them.
const (
	// ConnectFailed is a connect failure or refusal, or a reset of the
	// upstream connection or stream. Unsplit it counts as a 503.
	ConnectFailed Local = iota + 1
	// Timeout is a connect, per-try or route timeout. Unsplit it counts
	// as a 504.
	Timeout
	// ConnectSuccess is a connection established by a protocol whose
	// answer follows (HTTP). It ends a run of local-origin failures when
	// split, and is ignored otherwise.
	ConnectSuccess
	// ConnectSuccessFinal is a connection established where that is the
	// whole result (TCP proxy). Unsplit it counts as a 200.
	ConnectSuccessFinal
)

// Record reports an upstream HTTP status answered by addr. 5xx extend the
// 5xx run (and 502-504 the gateway run); anything else ends both. The
// answer that completes a run ejects the endpoint at once, unless
// MaxEjectionPercent refuses it. Unknown addresses are ignored.
//
// Callers do not report overflow 503s (flag UO), which Envoy never counts.
// Record takes no lock and does not allocate unless it ejects; it is safe
// for concurrent use.
func (d *Detector) Record(addr string, status int) {
	v := d.view.Load()
	if h := v.hosts[addr]; h != nil {
		d.status(v, h, status)
	}
}

// RecordLocal reports a locally originated result for addr. Unless
// SplitExternalLocalOriginErrors, it counts as the HTTP status Envoy maps it
// to (ConnectFailed 503, Timeout 504, ConnectSuccessFinal 200); with the
// split it extends or ends the local-origin run only. It is as cheap and as
// safe for concurrent use as Record.
func (d *Detector) RecordLocal(addr string, r Local) {
	v := d.view.Load()
	h := v.hosts[addr]
	if h == nil {
		return
	}
	if !v.cfg.SplitExternalLocalOriginErrors {
		switch r {
		case ConnectFailed:
			d.status(v, h, 503)
		case Timeout:
			d.status(v, h, 504)
		case ConnectSuccessFinal:
			d.status(v, h, 200)
		}
		return
	}
	switch r {
	case ConnectFailed, Timeout:
		if n := v.cfg.ConsecutiveLocalOriginFailures; h.cLocal.Add(1) == n && n > 0 {
			d.completeRun(h, ConsecutiveLocalOriginFailure)
		}
	case ConnectSuccess, ConnectSuccessFinal:
		h.cLocal.Store(0)
	}
}

// status applies one upstream status to h, as Envoy's putHttpResponseCode.
// A run triggers exactly when it reaches its threshold, so a longer run
// (the endpoint already ejected) does not trigger again.
func (d *Detector) status(v *view, h *host, status int) {
	if status < 500 || status > 599 {
		h.c5xx.Store(0)
		h.cGateway.Store(0)
		return
	}
	if status >= 502 && status <= 504 {
		if n := v.cfg.ConsecutiveGatewayErrors; h.cGateway.Add(1) == n && n > 0 {
			d.completeRun(h, ConsecutiveGatewayFailure)
		}
	} else {
		h.cGateway.Store(0)
	}
	if n := v.cfg.Consecutive5xxErrors; h.c5xx.Add(1) == n && n > 0 {
		d.completeRun(h, Consecutive5xx)
	}
}

// completeRun handles a run that reached its threshold: it ejects h if
// MaxEjectionPercent allows, then restarts the run's count, as Envoy's
// onConsecutiveErrorWorker does. An endpoint already ejected, or no longer
// in the cluster, is left alone.
func (d *Detector) completeRun(h *host, r Reason) {
	d.mu.Lock()
	v := d.view.Load()
	if v.hosts[h.addr] != h || h.ejected.Load() {
		d.mu.Unlock()
		return
	}
	d.stats.EjectionsDetected[r-1]++
	ev, ejected := d.eject(v, h, r, d.clk.Now())
	switch r {
	case Consecutive5xx:
		h.c5xx.Store(0)
	case ConsecutiveGatewayFailure:
		h.cGateway.Store(0)
	case ConsecutiveLocalOriginFailure:
		h.cLocal.Store(0)
	}
	d.mu.Unlock()
	if ejected && d.onEvent != nil {
		d.onEvent(ev)
	}
}

// eject ejects h unless MaxEjectionPercent forbids: Envoy allows it when
// (active+1)/endpoints ≤ max percent, or when none is ejected and
// AlwaysEjectOneHost. The multiplier grows by one while
// BaseEjectionTime × multiplier < MaxEjectionTime + BaseEjectionTime.
// Caller must hold d.mu.
func (d *Detector) eject(v *view, h *host, r Reason, now time.Time) (Event, bool) {
	pct := 100 * float64(d.stats.EjectionsActive+1) / float64(len(v.hosts))
	ok := pct <= v.cfg.MaxEjectionPercent ||
		(v.cfg.AlwaysEjectOneHost && d.stats.EjectionsActive == 0)
	if !ok {
		d.stats.EjectionsOverflow++
		return Event{}, false
	}
	d.stats.EjectionsActive++
	d.stats.EjectionsEnforcedTotal++
	d.stats.EjectionsEnforced[r-1]++
	h.ejected.Store(true)
	h.ejectedAt = now
	h.ejections++
	if v.cfg.BaseEjectionTime*time.Duration(h.multiplier) < v.cfg.MaxEjectionTime+v.cfg.BaseEjectionTime {
		h.multiplier++
	}
	return Event{
		Addr:      h.addr,
		Ejected:   true,
		Reason:    r,
		Ejections: h.ejections,
		Duration:  v.cfg.ejectionTime(h.multiplier),
	}, true
}
