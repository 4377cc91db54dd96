// Package outlier is Envoy's outlier detection for one cluster, as Istio
// configures it: consecutive 5xx, consecutive gateway errors and consecutive
// local-origin failures eject an endpoint at the answer that completes the
// run; Sweep, run every Interval, returns endpoints whose ejection time
// (BaseEjectionTime × multiplier) has passed and decays the multiplier of
// endpoints that stay healthy. Time comes from an injected clock.Clock, so
// tests move it as a value. The package is pure: no sockets, no net/http.
package outlier

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/remora-mesh/remora/internal/clock"
)

// A Detector holds one cluster's ejection state, keyed by endpoint address so
// that it survives config reloads (see Update). All methods are safe for
// concurrent use. Record and Ejected take no lock; ejections, Sweep and
// Update serialise on one mutex.
type Detector struct {
	clk     clock.Clock
	onEvent func(Event)
	view    atomic.Pointer[view]

	mu    sync.Mutex
	stats Stats // Guarded by mu.
}

// view is an immutable config and endpoint set; Update swaps in a new one.
type view struct {
	cfg   Config
	hosts map[string]*host
}

// host is one endpoint's state. The counters are atomics touched by Record;
// the rest is guarded by Detector.mu.
type host struct {
	addr                   string
	c5xx, cGateway, cLocal atomic.Uint32
	ejected                atomic.Bool
	ejectedAt, unejectedAt time.Time // Guarded by mu; zero if never.
	multiplier, ejections  uint32    // Guarded by mu.
}

// Event reports one endpoint entering or leaving ejection, for metrics, logs
// and picker rebuilds.
type Event struct {
	Addr string
	// Ejected is true for an ejection, false for a return to service.
	Ejected bool
	// Reason is why the endpoint was ejected; zero on return to service.
	Reason Reason
	// Ejections is how many times the endpoint has been ejected.
	Ejections uint32
	// Duration is how long this ejection lasts at least (until the first
	// Sweep after it); zero on return to service.
	Duration time.Duration
}

// Stats are cluster-wide counters with Envoy's outlier_detection.* meanings.
type Stats struct {
	EjectionsActive   int    // endpoints ejected now
	EjectionsOverflow uint64 // ejections refused by MaxEjectionPercent
	// EjectionsEnforcedTotal counts ejections; the array splits it by
	// Reason (index Reason-1).
	EjectionsEnforcedTotal uint64
	EjectionsEnforced      [numReasons]uint64
	// EjectionsDetected counts runs that reached a threshold, ejected or
	// not, by Reason (index Reason-1).
	EjectionsDetected [numReasons]uint64
}

// New returns a Detector for the endpoints addrs with cfg (zero durations and
// percent take Envoy's defaults). clk nil means clock.Real. onEvent, if not
// nil, is called after each ejection and return to service, on the goroutine
// that caused it (Record or Sweep), with no lock held: it may call the
// Detector, and should return quickly.
func New(cfg Config, clk clock.Clock, addrs []string, onEvent func(Event)) *Detector {
	if clk == nil {
		clk = clock.Real{}
	}
	d := &Detector{clk: clk, onEvent: onEvent}
	d.view.Store(newView(cfg, addrs, nil))
	return d
}

// newView builds a view over addrs, reusing old's host state for addresses
// it already has.
func newView(cfg Config, addrs []string, old map[string]*host) *view {
	v := &view{cfg: cfg.withDefaults(), hosts: make(map[string]*host, len(addrs))}
	for _, a := range addrs {
		if h, ok := old[a]; ok {
			v.hosts[a] = h
		} else if _, dup := v.hosts[a]; !dup {
			v.hosts[a] = &host{addr: a}
		}
	}
	return v
}

// Update replaces the config and the endpoint set, keeping the state
// (ejection, multiplier, counters) of addresses present before and after.
// Removed endpoints are forgotten; an ejected one no longer counts against
// MaxEjectionPercent. An endpoint ejected under the old config keeps its
// ejection until a Sweep under the new one returns it.
func (d *Detector) Update(cfg Config, addrs []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.view.Load()
	v := newView(cfg, addrs, old.hosts)
	for a, h := range old.hosts {
		if _, kept := v.hosts[a]; !kept && h.ejected.Load() {
			d.stats.EjectionsActive--
		}
	}
	d.view.Store(v)
}

// Config returns the effective config, defaults filled in: Interval for the
// caller's Sweep ticker, MinHealthPercent for lb.Available.
func (d *Detector) Config() Config { return d.view.Load().cfg }

// Ejected reports whether addr is ejected now. An unknown address is not.
// It takes no lock.
func (d *Detector) Ejected(addr string) bool {
	h := d.view.Load().hosts[addr]
	return h != nil && h.ejected.Load()
}

// Sweep is the interval timer's work; call it every Config().Interval. It
// returns to service each ejected endpoint whose min(BaseEjectionTime ×
// multiplier, MaxEjectionTime) has passed since its ejection, resetting its
// consecutive counts, and decrements the multiplier of each endpoint that has
// been back in service for at least one Interval.
func (d *Detector) Sweep() {
	var back []Event
	d.mu.Lock()
	v := d.view.Load()
	now := d.clk.Now()
	for _, h := range v.hosts {
		if h.ejected.Load() && now.Sub(h.ejectedAt) >= v.cfg.ejectionTime(h.multiplier) {
			d.uneject(h, now)
			back = append(back, Event{Addr: h.addr, Ejections: h.ejections})
		}
	}
	for _, h := range v.hosts {
		if !h.ejected.Load() && !h.unejectedAt.IsZero() && now.Sub(h.unejectedAt) >= v.cfg.Interval && h.multiplier > 0 {
			h.multiplier--
		}
	}
	d.mu.Unlock()
	if d.onEvent != nil {
		for _, e := range back {
			d.onEvent(e)
		}
	}
}

// uneject returns h to service. Caller must hold d.mu.
func (d *Detector) uneject(h *host, now time.Time) {
	h.ejected.Store(false)
	h.unejectedAt = now
	h.c5xx.Store(0)
	h.cGateway.Store(0)
	h.cLocal.Store(0)
	d.stats.EjectionsActive--
}

// ejectionTime is how long an ejection with multiplier m lasts.
func (c *Config) ejectionTime(m uint32) time.Duration {
	return min(c.BaseEjectionTime*time.Duration(m), c.MaxEjectionTime)
}

// Stats returns a copy of the cluster-wide counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// HostState is one endpoint's outlier state, for the admin /clusters view.
type HostState struct {
	Addr    string
	Ejected bool
	// EjectedAt is the time of the last ejection; zero if never ejected.
	EjectedAt time.Time
	// Ejections counts the endpoint's ejections since the Detector first
	// saw its address.
	Ejections uint32
	// Multiplier is the current ejection-time multiplier: the next
	// ejection lasts BaseEjectionTime × (Multiplier+1), capped.
	Multiplier uint32
	// The current runs of consecutive failures.
	Consecutive5xx, ConsecutiveGatewayErrors, ConsecutiveLocalOriginFailures uint32
}

// State returns addr's state; ok is false for an unknown address.
func (d *Detector) State(addr string) (s HostState, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.view.Load().hosts[addr]
	if h == nil {
		return HostState{}, false
	}
	return h.state(), true
}

// States returns every endpoint's state, sorted by address.
func (d *Detector) States() []HostState {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := d.view.Load()
	out := make([]HostState, 0, len(v.hosts))
	for _, h := range v.hosts {
		out = append(out, h.state())
	}
	slices.SortFunc(out, func(a, b HostState) int { return strings.Compare(a.Addr, b.Addr) })
	return out
}

// state copies h. Caller must hold d.mu.
func (h *host) state() HostState {
	return HostState{
		Addr:                           h.addr,
		Ejected:                        h.ejected.Load(),
		EjectedAt:                      h.ejectedAt,
		Ejections:                      h.ejections,
		Multiplier:                     h.multiplier,
		Consecutive5xx:                 h.c5xx.Load(),
		ConsecutiveGatewayErrors:       h.cGateway.Load(),
		ConsecutiveLocalOriginFailures: h.cLocal.Load(),
	}
}
