// Package upstream holds the live state of every cluster, reconciled with
// each snapshot: endpoints, load-balancing pickers, outlier detection,
// connection pools with Envoy's circuit breakers, dialing and TLS
// origination. State is keyed by cluster name and endpoint address so it
// survives reloads.
//
// A caller (the proxy) asks the Manager for a Cluster by name and then, per
// attempt, calls RoundTrip (HTTP) or DialTCP (TCP proxying); TryRetry
// guards each retry with the maxRetries breaker. Failures come back as
// values the caller maps to Envoy's response flags with errors.Is / As:
// ErrOverflow (UO), ErrNoHealthyUpstream (UH), *ConnectError (UF),
// *ResetError (UC, or UPE when Protocol), and the attempt context's own
// error when it ended (UT for a deadline, DC for a cancel).
package upstream

import (
	"errors"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/internal/clock"
	"github.com/remora-mesh/remora/outlier"
	"github.com/remora-mesh/remora/snapshot"
)

// Errors a caller maps to Envoy's response flags with errors.Is / As.
var (
	// ErrOverflow: a circuit breaker is open (503, x-envoy-overloaded, UO).
	ErrOverflow = errors.New("upstream overflow")
	// ErrNoHealthyUpstream: no endpoint to pick (503 "no healthy upstream", UH).
	ErrNoHealthyUpstream = errors.New("no healthy upstream")
)

// A ConnectError means no connection to Addr could be made (503, flag UF).
// Err is the dial, timeout or TLS handshake error; errors.Is(err,
// context.DeadlineExceeded) is true for a connect timeout.
type ConnectError struct {
	Addr string
	Err  error
}

// Error returns "connect ADDR: cause".
func (e *ConnectError) Error() string { return "connect " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns the cause, for errors.Is(err, context.DeadlineExceeded).
func (e *ConnectError) Unwrap() error { return e.Err }

// A ResetError means the upstream connection failed after the request
// was written, before response headers (503, flag UC/UR), or the response
// could not be parsed (502, flag UPE when Protocol is set).
type ResetError struct {
	Addr string
	// Written reports whether any of the request reached the upstream; a
	// request that was never written may be retried safely.
	Written  bool
	Protocol bool
	Err      error
}

// Error returns "upstream ADDR: cause".
func (e *ResetError) Error() string { return "upstream " + e.Addr + ": " + e.Err.Error() }

// Unwrap returns the cause (the attempt context's error when it ended the
// attempt).
func (e *ResetError) Unwrap() error { return e.Err }

// Host is one endpoint of a cluster as the proxy sees it. The value is
// shared by every attempt to the endpoint: treat it as read-only.
type Host struct {
	// Addr is "ip:port" (or "unix://path" for a unix socket endpoint).
	Addr string
}

// AttemptOptions shape one pick or request attempt.
type AttemptOptions struct {
	// Hash is the consistent-hash key of the request, when HasHash.
	Hash    uint64
	HasHash bool
	// Exclude are hosts tried by earlier attempts (Envoy previous_hosts).
	Exclude []string
	// Original is the connection's original destination, for
	// PASSTHROUGH / resolution NONE clusters and the PassthroughCluster.
	Original netip.AddrPort
}

// Options configure a Manager. The zero value is production use: the real
// clock, math/rand/v2, no logging, the system resolver.
type Options struct {
	// Clock drives outlier detection (ejection times); nil means
	// clock.Real.
	Clock clock.Clock
	// Rand feeds the load balancers and the hash of requests without a
	// hash key; it must be safe for concurrent use. Nil means
	// math/rand/v2.
	Rand func() uint64
	// Logger receives cluster events (ejections, DNS failures, TLS
	// config errors), never per-request lines. Nil means no logging.
	Logger *zap.Logger
	// Resolver resolves the endpoints of DNS clusters; nil means
	// net.DefaultResolver. NewResolver builds one for --dns-server.
	Resolver *net.Resolver
	// DNSRefresh is how often DNS clusters re-resolve; zero means
	// DefaultDNSRefresh.
	DNSRefresh time.Duration
	// NewTicker starts the outlier sweep ticker of the clusters that share
	// one interval (one ticker per distinct interval, not per cluster); it
	// returns the tick channel and a stop function. Nil means
	// time.NewTicker. Tests pass an unbuffered channel they send on.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
	// OnEjection, if not nil, is called for every outlier ejection and
	// return to service (for metrics), on the goroutine that caused it.
	OnEjection func(cluster string, ev outlier.Event)
}

// Defaults Istio applies, and the Passthrough cluster's settings.
const (
	// DefaultConnectTimeout is MeshConfig.connectTimeout.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultIdleTimeout is the upstream HTTP pool idle timeout when a
	// DestinationRule sets none. Envoy's is 1 hour, which loses the race
	// with servers that close idle keep-alive connections sooner (Node's
	// keepAliveTimeout and Apache's KeepAliveTimeout are 5s): a request
	// written as the server closes fails with 503 UC, the most reported
	// Istio 503. remora closes its idle connections first, below those
	// defaults; a connection the server closed while idle is still caught
	// by the liveness peek before reuse, and a request that fails before
	// any byte was written is retried (proxy).
	DefaultIdleTimeout = 4 * time.Second
	// PassthroughIdleTimeout is the PassthroughCluster's pool idle
	// timeout: the same, for the same reason.
	PassthroughIdleTimeout = DefaultIdleTimeout
	// DefaultDNSRefresh is Istio's dns_refresh_rate.
	DefaultDNSRefresh = 60 * time.Second
	// Unlimited is the circuit-breaker threshold Istio sets when the
	// DestinationRule sets none (2^32-1).
	Unlimited = 1<<32 - 1
	// PassthroughName is the cluster name of Passthrough().
	PassthroughName = "PassthroughCluster"
)

// Manager owns every live cluster. It is safe for concurrent use. The zero
// value is usable and behaves as NewManager(Options{}).
type Manager struct {
	once sync.Once
	opts Options
	log  *zap.Logger
	// read holds the clusters in use as of the last publish, for lookups
	// without a lock; live holds all of them.
	read atomic.Pointer[map[string]*Cluster]

	mu     sync.Mutex          // serialises Update, Close and activation
	snap   *snapshot.Snapshot  // the last Update's; guarded by mu
	live   map[string]*Cluster // the clusters in use; guarded by mu
	misses int                 // lookups that missed read since the last publish; guarded by mu
	pt     *Cluster            // created on first use; guarded by mu
	closed bool                // guarded by mu

	sweepMu sync.Mutex
	sweeps  map[time.Duration]*sweepGroup // guarded by sweepMu
}

// sweepGroup is the clusters whose outlier detectors share one interval:
// one ticker and one goroutine sweep them all, so a mesh of thousands of
// clusters costs one goroutine per distinct interval, not one per cluster.
type sweepGroup struct {
	clusters map[*Cluster]struct{} // guarded by Manager.sweepMu
	done     chan struct{}         // closed when the last cluster leaves
}

// joinSweep adds c to the sweep group of interval every, starting the
// group's ticker when c is its first cluster.
func (m *Manager) joinSweep(c *Cluster, every time.Duration) {
	m.sweepMu.Lock()
	defer m.sweepMu.Unlock()
	g := m.sweeps[every]
	if g == nil {
		if m.sweeps == nil {
			m.sweeps = map[time.Duration]*sweepGroup{}
		}
		g = &sweepGroup{clusters: map[*Cluster]struct{}{}, done: make(chan struct{})}
		m.sweeps[every] = g
		tick, stop := m.opts.NewTicker(every)
		go m.sweepLoop(g, tick, stop)
	}
	g.clusters[c] = struct{}{}
}

// leaveSweep removes c from the sweep group of every, stopping the
// group's ticker when c was its last cluster.
func (m *Manager) leaveSweep(c *Cluster, every time.Duration) {
	m.sweepMu.Lock()
	defer m.sweepMu.Unlock()
	g := m.sweeps[every]
	if g == nil {
		return
	}
	delete(g.clusters, c)
	if len(g.clusters) == 0 {
		close(g.done)
		delete(m.sweeps, every)
	}
}

// sweepLoop runs one outlier interval of every cluster in g at each tick,
// until g's last cluster leaves. The sweeps run with no Manager lock
// held: a sweep's events rebuild pickers under the cluster's epMu.
func (m *Manager) sweepLoop(g *sweepGroup, tick <-chan time.Time, stop func()) {
	defer stop()
	var batch []*Cluster
	for {
		select {
		case <-tick:
			m.sweepMu.Lock()
			batch = batch[:0]
			for c := range g.clusters {
				batch = append(batch, c)
			}
			m.sweepMu.Unlock()
			for _, c := range batch {
				c.sweep()
			}
			clear(batch)
		case <-g.done:
			return
		}
	}
}

// NewManager returns a Manager with opts.
func NewManager(opts Options) *Manager {
	m := &Manager{opts: opts}
	m.init()
	return m
}

func (m *Manager) init() {
	m.once.Do(func() {
		if m.opts.Clock == nil {
			m.opts.Clock = clock.Real{}
		}
		if m.opts.Resolver == nil {
			m.opts.Resolver = net.DefaultResolver
		}
		if m.opts.DNSRefresh <= 0 {
			m.opts.DNSRefresh = DefaultDNSRefresh
		}
		if m.opts.NewTicker == nil {
			m.opts.NewTicker = func(d time.Duration) (<-chan time.Time, func()) {
				t := time.NewTicker(d)
				return t.C, t.Stop
			}
		}
		m.log = m.opts.Logger
		if m.log == nil {
			m.log = zap.NewNop()
		}
	})
}

// Update makes snap current. Clusters in use keep their state (active
// requests, ejections, pooled connections) and take snap's settings and
// endpoints; clusters that disappear are closed: their idle connections
// are closed, requests in flight finish. The other clusters of snap become
// live on first use (Cluster), so a mesh of thousands of services costs
// only the clusters this proxy talks to; DNS clusters are live at once, so
// their names resolve before the first request. A nil snap changes
// nothing.
func (m *Manager) Update(snap *snapshot.Snapshot) {
	m.init()
	if snap == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if m.live == nil {
		m.live = map[string]*Cluster{}
	}
	var gone []*Cluster
	for name, c := range m.live {
		if sc := snap.Clusters[name]; sc != nil {
			c.update(sc)
		} else {
			delete(m.live, name)
			gone = append(gone, c)
		}
	}
	for name, sc := range snap.Clusters {
		if m.live[name] == nil && resolvesDNS(sc) {
			m.live[name] = m.newLive(sc)
		}
	}
	m.snap = snap
	m.publishLocked()
	for _, c := range gone {
		c.close()
	}
}

// resolvesDNS reports whether sc's endpoints are names to resolve.
func resolvesDNS(sc *snapshot.Cluster) bool {
	return sc.Service != nil && (sc.Service.Resolution == "DNS" || sc.Service.Resolution == "DNS_ROUND_ROBIN")
}

// newLive returns a new live cluster for sc. Caller must hold m.mu.
func (m *Manager) newLive(sc *snapshot.Cluster) *Cluster {
	c := newCluster(m, sc.Name)
	c.update(sc)
	return c
}

// Cluster returns the live cluster by name, making it live on its first
// use, or nil when the current snapshot has none (the caller answers 503
// NC). A cluster in use is found without a lock once published.
func (m *Manager) Cluster(name string) *Cluster {
	if p := m.read.Load(); p != nil {
		if c := (*p)[name]; c != nil {
			return c
		}
	}
	return m.activate(name)
}

// activate finds name among the clusters in use, or makes the current
// snapshot's cluster name live. Clusters made live are published to
// read once the lookups that missed it exceed an eighth of the clusters
// in use, so each costs O(1) amortized copying, as sync.Map promotes its
// dirty map.
func (m *Manager) activate(name string) *Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.live[name]
	if c == nil {
		if m.closed || m.snap == nil || m.snap.Clusters[name] == nil {
			return nil
		}
		c = m.newLive(m.snap.Clusters[name])
		m.live[name] = c
	}
	if m.misses++; m.misses > len(m.live)/8 {
		m.publishLocked()
	}
	return c
}

// publishLocked makes a copy of live the read map. Caller must hold m.mu.
func (m *Manager) publishLocked() {
	read := maps.Clone(m.live)
	m.read.Store(&read)
	m.misses = 0
}

// Passthrough is the cluster that connects to each request's original
// destination (ALLOW_ANY): AttemptOptions.Original, connect timeout 10s, no
// circuit-breaker limits, HTTP/1.1 pool idle timeout PassthroughIdleTimeout.
func (m *Manager) Passthrough() *Cluster {
	m.init()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pt == nil {
		m.pt = newCluster(m, PassthroughName)
		m.pt.set.Store(passthroughSettings())
		m.pt.markReady()
		if m.closed {
			m.pt.close()
		}
	}
	return m.pt
}

// Close stops every cluster's background work (outlier sweeps, DNS
// refresh) and closes idle connections. Requests in flight finish; their
// connections close instead of returning to a pool. Update after Close does
// nothing.
func (m *Manager) Close() {
	m.init()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, c := range m.live {
		c.close()
	}
	if m.pt != nil {
		m.pt.close()
	}
}

// all returns every cluster of the current snapshot sorted by name, the
// passthrough last once used: the live ones, and for each cluster not yet
// in use a probe built to report its Status.
// The probes are built without m.mu, so a cluster's first use does not
// wait for a status page of thousands of clusters.
func (m *Manager) all() []*Cluster {
	m.mu.Lock()
	snap, pt, live := m.snap, m.pt, maps.Clone(m.live)
	m.mu.Unlock()
	var out []*Cluster
	if snap != nil {
		out = make([]*Cluster, 0, len(snap.Clusters)+1)
		for _, name := range snap.ClusterNames() {
			if c := live[name]; c != nil {
				out = append(out, c)
			} else {
				out = append(out, m.probe(snap.Clusters[name]))
			}
		}
	}
	if pt != nil {
		out = append(out, pt)
	}
	return out
}

// probe returns a cluster for sc that is not live: the state a cluster has
// before its first use, with no background work (it joins no sweep group).
func (m *Manager) probe(sc *snapshot.Cluster) *Cluster {
	c := newCluster(m, sc.Name)
	c.probe = true
	c.update(sc)
	return c
}
