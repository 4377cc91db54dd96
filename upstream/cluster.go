package upstream

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/lb"
	"github.com/remora-mesh/remora/outlier"
	"github.com/remora-mesh/remora/snapshot"
)

// Cluster is one live upstream cluster. It keeps its state (endpoints,
// counters, ejections, pooled connections) across snapshots for as long as
// the cluster name exists. All methods are safe for concurrent use.
type Cluster struct {
	name  string
	m     *Manager
	set   atomic.Pointer[settings]
	view  atomic.Pointer[view]
	det   atomic.Pointer[outlier.Detector]
	h2    atomic.Pointer[http.Transport]
	ready chan struct{} // closed once the first endpoint set is known
	probe bool          // built only to report Status (Manager.all): no sweeps

	// Circuit-breaker gauges, cluster-wide.
	rq, retries atomic.Int64
	stats       clusterStats

	epMu       sync.Mutex // serialises endpoint-set changes and picker rebuilds
	readyOnce  sync.Once
	sweepEvery time.Duration      // guarded by epMu; the sweep group joined, zero for none
	dnsStop    context.CancelFunc // guarded by epMu
	dnsKey     string             // guarded by epMu

	mu      sync.Mutex // the connection pool: guards the fields below and endpoint pool fields
	cx      int64      // connections open or opening
	pending int64      // requests waiting for a connection
	waiters []*waiter
	orig    map[string]*endpoint // original-destination endpoints by address
	closed  bool
}

// clusterStats are Envoy's overflow counters of a cluster.
type clusterStats struct {
	cxOverflow, pendingOverflow, rqOverflow, retryOverflow atomic.Uint64
}

// view is an immutable endpoint set with its picker.
type view struct {
	picker  lb.Picker
	eps     map[string]*endpoint
	list    []*endpoint // sorted by address
	inPanic bool
}

// endpoint is one upstream address and its live state.
type endpoint struct {
	addr    string // "ip:port" or "unix://path"
	network string // "tcp" or "unix"
	dial    string // address passed to the dialer
	weight  uint32
	host    *Host

	lbEP    lb.Endpoint
	origDst bool // an original-destination endpoint, dropped when unused

	active                     atomic.Int64 // requests in flight (lb.Endpoint.Active)
	cxActive                   atomic.Int64 // connections established and open
	rqTotal, rqError           atomic.Uint64
	cxTotal, cxFail, rqTimeout atomic.Uint64

	nconns  int      // guarded by Cluster.mu: connections open or opening
	idle    []*pconn // guarded by Cluster.mu: LIFO
	removed bool     // guarded by Cluster.mu
	refs    int      // guarded by Cluster.mu: original-destination users
}

func newEndpoint(addr string, weight uint32) *endpoint {
	ep := &endpoint{addr: addr, network: "tcp", dial: addr, weight: weight, host: &Host{Addr: addr}}
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		ep.network, ep.dial = "unix", path
	}
	ep.lbEP = lb.Endpoint{Addr: addr, Weight: weight, Active: &ep.active}
	return ep
}

func newCluster(m *Manager, name string) *Cluster {
	c := &Cluster{name: name, m: m, ready: make(chan struct{})}
	c.set.Store(&settings{limits: unlimited(), connect: DefaultConnectTimeout, idle: DefaultIdleTimeout})
	c.view.Store(&view{picker: emptyPicker{}, eps: map[string]*endpoint{}})
	return c
}

// emptyPicker picks nothing.
type emptyPicker struct{}

func (emptyPicker) Pick(uint64) (lb.Endpoint, bool) { return lb.Endpoint{}, false }

// Name returns the cluster's name, outbound|PORT|SUBSET|FQDN.
func (c *Cluster) Name() string { return c.name }

// Limits returns the circuit-breaker thresholds in effect.
func (c *Cluster) Limits() Limits { return c.set.Load().limits }

// update applies a snapshot cluster: settings, endpoints, outlier
// detection and its sweep group, DNS resolution.
func (c *Cluster) update(sc *snapshot.Cluster) {
	s := settingsFor(sc, c.m.opts.Rand)
	if s.tlsErr != nil {
		c.m.log.Warn("upstream TLS settings", zap.String("cluster", c.name), zap.Error(s.tlsErr))
	}
	c.epMu.Lock()
	defer c.epMu.Unlock()
	old := c.set.Swap(s)
	if old.http2 != s.http2 || old.idle != s.idle || tlsKey(old.tls) != tlsKey(s.tls) {
		if t := c.h2.Swap(nil); t != nil {
			t.CloseIdleConnections()
		}
	}
	c.updateDetectorLocked(s)
	switch {
	case s.origDst:
		c.stopDNSLocked()
		c.setEndpointsLocked(nil)
		c.markReady()
	case s.dns:
		c.startDNSLocked(sc, s)
	default:
		c.stopDNSLocked()
		c.setEndpointsLocked(staticEndpoints(sc))
		c.markReady()
	}
}

// target is an endpoint address with its weight.
type target struct {
	addr   string
	weight uint32
}

// staticEndpoints lists sc's endpoints as "ip:port" with their weights.
func staticEndpoints(sc *snapshot.Cluster) []target {
	out := make([]target, 0, len(sc.Endpoints))
	for i := range sc.Endpoints {
		e := &sc.Endpoints[i]
		if strings.HasPrefix(e.Address, "unix://") {
			out = append(out, target{e.Address, e.Weight})
			continue
		}
		out = append(out, target{net.JoinHostPort(e.Address, strconv.FormatUint(uint64(e.PortFor(sc.Port)), 10)), e.Weight})
	}
	return out
}

func (c *Cluster) markReady() { c.readyOnce.Do(func() { close(c.ready) }) }

// updateDetectorLocked creates, updates or drops the outlier detector and
// moves the cluster to the sweep group of its interval. Caller must hold
// c.epMu.
func (c *Cluster) updateDetectorLocked(s *settings) {
	if s.outlier == nil {
		c.det.Store(nil)
		c.stopSweepLocked()
		return
	}
	addrs := c.view.Load().addrs()
	if d := c.det.Load(); d != nil {
		d.Update(*s.outlier, addrs)
	} else {
		c.det.Store(outlier.New(*s.outlier, c.m.opts.Clock, addrs, c.onOutlierEvent))
	}
	if every := c.det.Load().Config().Interval; every != c.sweepEvery && !c.probe {
		c.stopSweepLocked()
		c.m.joinSweep(c, every)
		c.sweepEvery = every
	}
}

// stopSweepLocked leaves the sweep group. Caller must hold c.epMu.
func (c *Cluster) stopSweepLocked() {
	if c.sweepEvery != 0 {
		c.m.leaveSweep(c, c.sweepEvery)
		c.sweepEvery = 0
	}
}

// sweep runs one outlier interval: ejected endpoints whose time is up
// return to service (and the picker is rebuilt by the event).
func (c *Cluster) sweep() {
	if d := c.det.Load(); d != nil {
		d.Sweep()
	}
}

// onOutlierEvent rebuilds the picker after an ejection or return.
func (c *Cluster) onOutlierEvent(ev outlier.Event) {
	c.epMu.Lock()
	c.rebuildLocked(c.view.Load().eps, c.view.Load().list)
	c.epMu.Unlock()
	if ev.Ejected {
		c.m.log.Info("outlier ejection", zap.String("cluster", c.name), zap.String("host", ev.Addr),
			zap.Stringer("reason", ev.Reason), zap.Uint32("ejections", ev.Ejections), zap.Duration("duration", ev.Duration))
	} else {
		c.m.log.Info("outlier return", zap.String("cluster", c.name), zap.String("host", ev.Addr))
	}
	if f := c.m.opts.OnEjection; f != nil {
		f(c.name, ev)
	}
}

func (v *view) addrs() []string {
	out := make([]string, len(v.list))
	for i, e := range v.list {
		out[i] = e.addr
	}
	return out
}

// setEndpointsLocked replaces the endpoint set, keeping the state of
// addresses present before and after; removed endpoints lose their idle
// connections. Caller must hold c.epMu.
func (c *Cluster) setEndpointsLocked(ts []target) {
	old := c.view.Load()
	eps := make(map[string]*endpoint, len(ts))
	list := make([]*endpoint, 0, len(ts))
	for _, t := range ts {
		if _, dup := eps[t.addr]; dup {
			continue
		}
		ep := old.eps[t.addr]
		if ep == nil || ep.weight != t.weight {
			nep := newEndpoint(t.addr, t.weight)
			if ep != nil {
				nep.adopt(ep)
			}
			ep = nep
		}
		eps[t.addr] = ep
		list = append(list, ep)
	}
	sortEndpoints(list)
	var gone []*endpoint
	for a, ep := range old.eps {
		if eps[a] != ep {
			gone = append(gone, ep)
		}
	}
	if d, o := c.det.Load(), c.set.Load().outlier; d != nil && o != nil {
		addrs := make([]string, len(list))
		for i, e := range list {
			addrs[i] = e.addr
		}
		d.Update(*o, addrs)
	}
	c.rebuildLocked(eps, list)
	c.retire(gone)
}

// adopt moves old's live state into e, for a weight change: the counters
// carry over; old's connections stay old's and close when they free up.
func (e *endpoint) adopt(old *endpoint) {
	e.rqTotal.Store(old.rqTotal.Load())
	e.rqError.Store(old.rqError.Load())
	e.cxTotal.Store(old.cxTotal.Load())
	e.cxFail.Store(old.cxFail.Load())
	e.rqTimeout.Store(old.rqTimeout.Load())
}

func sortEndpoints(list []*endpoint) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].addr < list[j-1].addr; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}

// rebuildLocked builds a new picker over the endpoints that may take
// traffic (Envoy's panic threshold via lb.Available). Caller must hold
// c.epMu.
func (c *Cluster) rebuildLocked(eps map[string]*endpoint, list []*endpoint) {
	s := c.set.Load()
	all := make([]lb.Endpoint, len(list))
	for i, e := range list {
		all[i] = e.lbEP
	}
	var healthy func(lb.Endpoint) bool
	minHealth := 0.0
	if d := c.det.Load(); d != nil {
		healthy = func(e lb.Endpoint) bool { return !d.Ejected(e.Addr) }
		minHealth = d.Config().MinHealthPercent
	}
	avail, panic := lb.Available(all, healthy, minHealth)
	cfg := s.lb
	if cfg.Policy == lb.Passthrough {
		cfg.Policy = lb.LeastRequest
	}
	p, err := lb.New(cfg, avail)
	if err != nil {
		c.m.log.Warn("load balancer config", zap.String("cluster", c.name), zap.Error(err))
		p, _ = lb.New(lb.Config{Rand: cfg.Rand}, avail)
	}
	c.view.Store(&view{picker: p, eps: eps, list: list, inPanic: panic})
}

// retire marks removed endpoints and closes their idle connections; busy
// connections close when their request ends.
func (c *Cluster) retire(gone []*endpoint) {
	if len(gone) == 0 {
		return
	}
	var idle []*pconn
	c.mu.Lock()
	for _, ep := range gone {
		ep.removed = true
		idle = append(idle, ep.idle...)
		ep.idle = nil
	}
	c.mu.Unlock()
	for _, pc := range idle {
		c.closeConn(pc)
	}
}

// close stops the cluster's background work and closes idle connections.
func (c *Cluster) close() {
	c.epMu.Lock()
	c.stopSweepLocked()
	c.stopDNSLocked()
	c.markReady()
	v := c.view.Load()
	c.epMu.Unlock()
	c.mu.Lock()
	c.closed = true
	gone := append([]*endpoint(nil), v.list...)
	for _, ep := range c.orig {
		gone = append(gone, ep)
	}
	c.mu.Unlock()
	c.retire(gone)
	if t := c.h2.Swap(nil); t != nil {
		t.CloseIdleConnections()
	}
}

// pick chooses an endpoint for one attempt: the original destination for
// PASSTHROUGH / resolution NONE clusters, else the picker's choice avoiding
// opt.Exclude. It waits for a DNS cluster's first resolution.
func (c *Cluster) pick(ctx context.Context, s *settings, opt *AttemptOptions) (*endpoint, error) {
	if s.origDst {
		return c.origEndpoint(opt.Original)
	}
	select {
	case <-c.ready:
	default:
		select {
		case <-c.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	v := c.view.Load()
	h := opt.Hash
	if !opt.HasHash && (s.lb.Policy == lb.RingHash || s.lb.Policy == lb.Maglev) {
		h = c.random()
	}
	var lep lb.Endpoint
	var ok bool
	if len(opt.Exclude) > 0 {
		lep, ok = lb.PickExcept(v.picker, h, opt.Exclude)
	} else {
		lep, ok = v.picker.Pick(h)
	}
	if !ok {
		return nil, ErrNoHealthyUpstream
	}
	return v.eps[lep.Addr], nil
}

func (c *Cluster) random() uint64 {
	if r := c.m.opts.Rand; r != nil {
		return r()
	}
	return rand.Uint64()
}

// origEndpoint returns the endpoint for an original destination, creating
// it on first use; release it with c.unref.
func (c *Cluster) origEndpoint(dst netip.AddrPort) (*endpoint, error) {
	if !dst.IsValid() {
		return nil, ErrNoHealthyUpstream
	}
	addr := dst.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.orig == nil {
		c.orig = map[string]*endpoint{}
	}
	ep := c.orig[addr]
	if ep == nil {
		ep = newEndpoint(addr, 1)
		ep.origDst = true
		c.orig[addr] = ep
	}
	ep.refs++
	return ep, nil
}

// unref releases an original-destination endpoint taken by pick.
func (c *Cluster) unref(ep *endpoint) {
	if !ep.origDst {
		return
	}
	c.mu.Lock()
	ep.refs--
	c.forgetLocked(ep)
	c.mu.Unlock()
}

// forgetLocked drops an unused original-destination endpoint. Caller must
// hold c.mu.
func (c *Cluster) forgetLocked(ep *endpoint) {
	if ep.origDst && ep.refs == 0 && ep.nconns == 0 && c.orig[ep.addr] == ep {
		delete(c.orig, ep.addr)
	}
}

// endpointByAddr finds a live endpoint (for the HTTP/2 dialer).
func (c *Cluster) endpointByAddr(addr string) *endpoint {
	if ep := c.view.Load().eps[addr]; ep != nil {
		return ep
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.orig[addr]
}

// TryRetry reserves a slot under the maxRetries circuit breaker; false
// means the retry must not happen (flag UO). Call the returned release
// when the retry ends; it is safe to call more than once.
func (c *Cluster) TryRetry() (release func(), ok bool) {
	if c.retries.Add(1) > c.set.Load().limits.MaxRetries {
		c.retries.Add(-1)
		c.stats.retryOverflow.Add(1)
		return func() {}, false
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			c.retries.Add(-1)
		}
	}, true
}

// startRequest takes a slot under the maxRequests breaker.
func (c *Cluster) startRequest(s *settings, ep *endpoint) bool {
	if c.rq.Add(1) > s.limits.MaxRequests {
		c.rq.Add(-1)
		c.stats.rqOverflow.Add(1)
		return false
	}
	ep.active.Add(1)
	ep.rqTotal.Add(1)
	return true
}

// endRequest releases what startRequest and pick took.
func (c *Cluster) endRequest(ep *endpoint) {
	ep.active.Add(-1)
	c.rq.Add(-1)
	c.unref(ep)
}

// record reports an upstream status for outlier detection.
func (c *Cluster) record(ep *endpoint, status int) {
	if d := c.det.Load(); d != nil {
		d.Record(ep.addr, status)
	}
}

// recordLocal reports a local-origin result for outlier detection.
func (c *Cluster) recordLocal(ep *endpoint, r outlier.Local) {
	if d := c.det.Load(); d != nil {
		d.RecordLocal(ep.addr, r)
	}
}
