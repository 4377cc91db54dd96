package upstream

import "github.com/remora-mesh/remora/outlier"

// ClusterStatus is a point-in-time view of one live cluster, for the admin
// /clusters page and metrics.
type ClusterStatus struct {
	Name string `json:"name"`
	// LB is the load-balancing policy, Envoy's name (e.g. LEAST_REQUEST).
	LB string `json:"lb_policy"`
	// Limits are the circuit-breaker thresholds in effect.
	Limits Limits `json:"circuit_breakers"`
	// OutlierDetection reports whether the cluster ejects outliers.
	OutlierDetection bool `json:"outlier_detection"`
	// InPanic is set when too few endpoints are healthy and ejected ones
	// take traffic again (minHealthPercent).
	InPanic bool `json:"in_panic,omitempty"`
	// Gauges: connections open or opening, requests in flight, requests
	// waiting for a connection, retries in flight.
	CxActive      int64 `json:"cx_active"`
	RqActive      int64 `json:"rq_active"`
	RqPending     int64 `json:"rq_pending_active"`
	RetriesActive int64 `json:"rq_retry_active"`
	// Overflow counters, Envoy's upstream_cx_overflow,
	// upstream_rq_pending_overflow, upstream_rq_overflow (max requests)
	// and upstream_rq_retry_overflow.
	CxOverflow      uint64 `json:"upstream_cx_overflow"`
	PendingOverflow uint64 `json:"upstream_rq_pending_overflow"`
	RqOverflow      uint64 `json:"upstream_rq_overflow"`
	RetryOverflow   uint64 `json:"upstream_rq_retry_overflow"`
	// Outlier is the detector's counters; zero without outlier detection.
	Outlier outlier.Stats `json:"outlier_detection_stats"`
	// Hosts are the endpoints, sorted by address (for original-destination
	// clusters, the destinations in use).
	Hosts []HostStatus `json:"host_statuses"`
}

// HostStatus is one endpoint's state.
type HostStatus struct {
	Address string `json:"address"`
	Weight  uint32 `json:"weight"`
	// Health is Envoy's health_flags: "healthy" or "/failed_outlier_check".
	Health  string `json:"health"`
	Ejected bool   `json:"ejected"`
	// Ejections counts the endpoint's outlier ejections.
	Ejections     uint32 `json:"ejections"`
	CxActive      int64  `json:"cx_active"`
	CxTotal       uint64 `json:"cx_total"`
	CxConnectFail uint64 `json:"cx_connect_fail"`
	RqActive      int64  `json:"rq_active"`
	RqTotal       uint64 `json:"rq_total"`
	RqError       uint64 `json:"rq_error"`
	RqTimeout     uint64 `json:"rq_timeout"`
}

// Status returns every live cluster's status, sorted by name, with the
// PassthroughCluster last once it has been used. It is safe to call at any
// time and takes each cluster's pool lock briefly.
func (m *Manager) Status() []ClusterStatus {
	m.init()
	cs := m.all()
	out := make([]ClusterStatus, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Status())
	}
	return out
}

// OverflowCounts are one cluster's circuit-breaker refusals, the overflow
// counters of its ClusterStatus.
type OverflowCounts struct {
	Cx, Pending, Rq, Retry uint64
}

// Overflows calls yield with the overflow counters of every cluster in
// use, in no order, and of the PassthroughCluster once used; a cluster
// not yet in use has refused nothing. It takes no cluster's lock, and a
// metrics scrape costs nothing per unused cluster.
func (m *Manager) Overflows(yield func(cluster string, c OverflowCounts)) {
	m.mu.Lock()
	cs := make([]*Cluster, 0, len(m.live)+1)
	for _, c := range m.live {
		cs = append(cs, c)
	}
	if m.pt != nil {
		cs = append(cs, m.pt)
	}
	m.mu.Unlock()
	for _, c := range cs {
		yield(c.name, OverflowCounts{Cx: c.stats.cxOverflow.Load(), Pending: c.stats.pendingOverflow.Load(),
			Rq: c.stats.rqOverflow.Load(), Retry: c.stats.retryOverflow.Load()})
	}
}

// Status returns the cluster's status.
func (c *Cluster) Status() ClusterStatus {
	s := c.set.Load()
	v := c.view.Load()
	st := ClusterStatus{
		Name: c.name, LB: s.lb.Policy.String(), Limits: s.limits, InPanic: v.inPanic,
		RqActive: c.rq.Load(), RetriesActive: c.retries.Load(),
		CxOverflow: c.stats.cxOverflow.Load(), PendingOverflow: c.stats.pendingOverflow.Load(),
		RqOverflow: c.stats.rqOverflow.Load(), RetryOverflow: c.stats.retryOverflow.Load(),
	}
	if s.origDst {
		st.LB = "CLUSTER_PROVIDED"
	}
	d := c.det.Load()
	if d != nil {
		st.OutlierDetection = true
		st.Outlier = d.Stats()
	}
	eps := append([]*endpoint(nil), v.list...)
	c.mu.Lock()
	st.CxActive, st.RqPending = c.cx, c.pending
	for _, ep := range c.orig {
		eps = append(eps, ep)
	}
	c.mu.Unlock()
	sortEndpoints(eps)
	for _, ep := range eps {
		st.Hosts = append(st.Hosts, ep.status(d))
	}
	return st
}

func (ep *endpoint) status(d *outlier.Detector) HostStatus {
	h := HostStatus{
		Address: ep.addr, Weight: max(ep.weight, 1), Health: "healthy",
		CxActive: ep.cxActive.Load(), CxTotal: ep.cxTotal.Load(), CxConnectFail: ep.cxFail.Load(),
		RqActive: ep.active.Load(), RqTotal: ep.rqTotal.Load(), RqError: ep.rqError.Load(), RqTimeout: ep.rqTimeout.Load(),
	}
	if d != nil {
		if os, ok := d.State(ep.addr); ok {
			h.Ejected, h.Ejections = os.Ejected, os.Ejections
		}
	}
	if h.Ejected {
		h.Health = "/failed_outlier_check"
	}
	return h
}
