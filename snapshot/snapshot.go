// Package snapshot compiles a validated config.Set into one immutable
// Snapshot: the service registry, the clusters with their merged traffic
// policies, and the outbound traffic policy. Requests read the current
// Snapshot through a Store's single atomic pointer.
package snapshot

import (
	"fmt"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/routing"
)

// Options describe the proxy the snapshot is compiled for.
type Options struct {
	// Namespace is the proxy's namespace; empty means "default".
	Namespace string
	// Domain is the cluster domain; empty means "cluster.local".
	Domain string
	// Labels are the proxy workload's labels (sourceLabels,
	// workloadSelector, Gateway selector).
	Labels map[string]string
	// Gateway is set for a gateway proxy (--role gateway): it serves the
	// Gateways whose selector matches Labels instead of the "mesh" routes.
	Gateway bool
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Domain == "" {
		o.Domain = "cluster.local"
	}
	return o
}

// Cluster is one upstream cluster: a (host, subset, port) with its
// endpoints and merged policy.
type Cluster struct {
	// Name is Envoy's cluster name, outbound|PORT|SUBSET|FQDN.
	Name    string
	Service *Service
	Port    Port
	Subset  string
	// Endpoints are the service endpoints the subset's labels select.
	Endpoints []Endpoint
	Policy    Policy
}

// ClusterName is Istio's outbound cluster name.
func ClusterName(port uint32, subset, host string) string {
	return "outbound|" + strconv.FormatUint(uint64(port), 10) + "|" + subset + "|" + host
}

// OutboundMode is what happens to destinations outside the registry.
type OutboundMode string

// The outbound traffic policies.
const (
	AllowAny     OutboundMode = "ALLOW_ANY"
	RegistryOnly OutboundMode = "REGISTRY_ONLY"
)

// Snapshot is one compiled, immutable config. Nothing in it changes after
// Build returns; it is safe for concurrent use.
type Snapshot struct {
	// Version counts snapshots published by a Store, from 1.
	Version  uint64
	Loaded   time.Time
	Opts     Options
	Set      *config.Set
	Diags    config.Diagnostics
	Registry *Registry
	// Clusters by name.
	Clusters map[string]*Cluster
	// Outbound is the Sidecar's outboundTrafficPolicy mode.
	Outbound OutboundMode
	// Routes are the compiled VirtualService rules for this proxy.
	Routes *routing.Table
	// RouteWarnings name rules and hosts routing dropped.
	RouteWarnings []string
	// Gateways are the Gateways this proxy serves (gateway role only).
	Gateways []*config.Object[config.Gateway]
}

// Build compiles set for a proxy described by opts.
func Build(set *config.Set, diags config.Diagnostics, opts Options) (*Snapshot, error) {
	if err := diags.Err(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	s := &Snapshot{Loaded: time.Now(), Opts: opts, Set: set, Diags: diags, Clusters: map[string]*Cluster{}}
	s.Registry = buildRegistry(set, opts)
	s.Outbound = outboundMode(set, opts)
	s.Routes, s.RouteWarnings = routing.Compile(set.VirtualServices, s.routingContext())
	rules := destRules(set, opts)
	for _, svc := range s.Registry.Services() {
		dr := ruleFor(rules, svc.Host)
		for _, p := range svc.Ports {
			c := &Cluster{Name: ClusterName(p.Number, "", svc.Host), Service: svc, Port: p, Endpoints: svc.Endpoints}
			if dr != nil {
				c.Policy = forPort(dr.policy, p.Number)
			}
			s.Clusters[c.Name] = c
			if dr == nil {
				continue
			}
			for i := range dr.subsets {
				ss := &dr.subsets[i]
				sc := &Cluster{Name: ClusterName(p.Number, ss.Name, svc.Host), Service: svc, Port: p, Subset: ss.Name,
					Endpoints: selectEndpoints(svc.Endpoints, ss.Labels), Policy: mergePolicy(dr.policy, ss.TrafficPolicy, p.Number)}
				s.Clusters[sc.Name] = sc
			}
		}
	}
	return s, nil
}

// routingContext describes this proxy to the routing compiler: a sidecar
// applies "mesh"; a gateway applies the Gateways its labels select, on
// their server ports.
func (s *Snapshot) routingContext() routing.Context {
	ctx := routing.Context{Namespace: s.Opts.Namespace, Domain: s.Opts.Domain, Labels: s.Opts.Labels}
	for _, svc := range s.Registry.Services() {
		rs := routing.Service{Host: svc.Host, Addresses: svc.Addresses}
		for _, p := range svc.Ports {
			rs.Ports = append(rs.Ports, p.Number)
		}
		ctx.Services = append(ctx.Services, rs)
	}
	if !s.Opts.Gateway {
		return ctx
	}
	ctx.Gateways = []string{}
	for _, g := range s.Set.Gateways {
		if !labelsMatch(g.Spec.Selector, s.Opts.Labels) {
			continue
		}
		s.Gateways = append(s.Gateways, g)
		ctx.Gateways = append(ctx.Gateways, g.Meta.Namespace+"/"+g.Meta.Name)
		for _, srv := range g.Spec.Servers {
			if srv.Port != nil {
				ctx.Ports = append(ctx.Ports, srv.Port.Number)
			}
		}
	}
	if len(ctx.Gateways) == 0 {
		ctx.Gateways = []string{"-"} // serves no VirtualService
	}
	return ctx
}

func selectEndpoints(eps []Endpoint, labels map[string]string) []Endpoint {
	var out []Endpoint
	for _, e := range eps {
		if labelsMatch(labels, e.Labels) {
			out = append(out, e)
		}
	}
	return out
}

// outboundMode reads the Sidecar that applies to this proxy: one whose
// workloadSelector matches its labels first, else one without a selector
// in its namespace. An outboundTrafficPolicy without mode is REGISTRY_ONLY,
// the proto's zero value, as in Istio.
func outboundMode(set *config.Set, opts Options) OutboundMode {
	var chosen *config.Sidecar
	for _, sc := range set.Sidecars {
		if sc.Meta.Namespace != opts.Namespace {
			continue
		}
		if ws := sc.Spec.WorkloadSelector; ws != nil {
			if labelsMatch(ws.Labels, opts.Labels) {
				chosen = &sc.Spec
				break
			}
			continue
		}
		if chosen == nil {
			chosen = &sc.Spec
		}
	}
	if chosen == nil || chosen.OutboundTrafficPolicy == nil {
		return AllowAny
	}
	if chosen.OutboundTrafficPolicy.Mode == "ALLOW_ANY" {
		return AllowAny
	}
	return RegistryOnly
}

// ClusterNames returns every cluster name, sorted.
func (s *Snapshot) ClusterNames() []string {
	names := make([]string, 0, len(s.Clusters))
	for n := range s.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Store holds the current Snapshot. Load and Swap are safe for concurrent
// use; a request loads once and keeps that snapshot to its end.
type Store struct {
	cur     atomic.Pointer[Snapshot]
	version atomic.Uint64
}

// Load returns the current snapshot, or nil before the first Swap.
func (st *Store) Load() *Snapshot { return st.cur.Load() }

// Swap publishes s as the current snapshot and numbers it.
func (st *Store) Swap(s *Snapshot) {
	s.Version = st.version.Add(1)
	st.cur.Store(s)
}

// String describes s for logs.
func (s *Snapshot) String() string {
	return fmt.Sprintf("snapshot v%d: %d resources, %d services, %d clusters", s.Version, s.Set.Count(), len(s.Registry.hosts), len(s.Clusters))
}
