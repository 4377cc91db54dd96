package snapshot

import (
	"sort"
	"strings"

	"github.com/remora-mesh/remora/config"
)

// Service is one registry host: a ServiceEntry host with its ports,
// addresses and endpoints.
type Service struct {
	// Host is the fully qualified host name ("reviews.default.svc.cluster.local").
	Host      string
	Namespace string
	// Addresses are the VIPs or CIDRs a client may connect to.
	Addresses  []string
	Ports      []Port
	Resolution config.Resolution
	Location   config.Location
	Endpoints  []Endpoint
	// Src names the ServiceEntry that registered the host.
	Src string
}

// Port is one service port.
type Port struct {
	Number   uint32
	Name     string
	Protocol config.Protocol
	// TargetPort is the endpoint port unless an endpoint's ports map says
	// otherwise; 0 means Number.
	TargetPort uint32
}

// Endpoint is one backend instance of a service.
type Endpoint struct {
	// Address is an IP, or a DNS name for resolution DNS, or unix://path.
	Address string
	// Ports maps a service port name to the endpoint's port.
	Ports    map[string]uint32
	Labels   map[string]string
	Weight   uint32
	Locality string
}

// PortFor returns the endpoint port that serves service port p.
func (e *Endpoint) PortFor(p Port) uint32 {
	if n, ok := e.Ports[p.Name]; ok && p.Name != "" {
		return n
	}
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Number
}

// Port returns the service port with number n.
func (s *Service) Port(n uint32) (Port, bool) {
	for _, p := range s.Ports {
		if p.Number == n {
			return p, true
		}
	}
	return Port{}, false
}

// Registry is every service the config registers, by host.
type Registry struct {
	byHost map[string]*Service
	hosts  []string
}

// Service returns the service registered for an exact FQDN.
func (r *Registry) Service(host string) *Service { return r.byHost[strings.ToLower(host)] }

// Services returns every service, sorted by host.
func (r *Registry) Services() []*Service {
	out := make([]*Service, len(r.hosts))
	for i, h := range r.hosts {
		out[i] = r.byHost[h]
	}
	return out
}

// Lookup finds the service for a host: an exact registration first, then
// the most specific wildcard registration that covers it.
func (r *Registry) Lookup(host string) *Service {
	host = strings.ToLower(host)
	if s := r.byHost[host]; s != nil {
		return s
	}
	var best *Service
	for _, h := range r.hosts {
		if strings.HasPrefix(h, "*") && config.HostMatches(h, host) && (best == nil || len(h) > len(best.Host)) {
			best = r.byHost[h]
		}
	}
	return best
}

// Resolve finds the service a client in namespace ns means by host: the
// host itself, or the Kubernetes-style aliases Istio gives a sidecar
// ("reviews", "reviews.default", "reviews.default.svc") expanded with the
// cluster domain.
func (r *Registry) Resolve(host, ns, domain string) *Service {
	if s := r.Lookup(host); s != nil {
		return s
	}
	switch n := strings.Count(host, "."); {
	case n == 0:
		return r.Lookup(config.FQDN(host, ns, domain))
	case n == 1:
		return r.Lookup(host + ".svc." + domain)
	case strings.HasSuffix(host, ".svc"):
		return r.Lookup(host + "." + domain)
	}
	return nil
}

// buildRegistry turns ServiceEntries (and the WorkloadEntries their
// workloadSelectors pick) into services. When two entries register one
// host, the first wins, as with Istio's creation order.
func buildRegistry(set *config.Set, opts Options) *Registry {
	r := &Registry{byHost: map[string]*Service{}}
	for _, se := range set.ServiceEntries {
		eps := endpointsOf(se, set)
		for _, h := range se.Spec.Hosts {
			fqdn := strings.ToLower(config.FQDN(h, se.Meta.Namespace, opts.Domain))
			if _, dup := r.byHost[fqdn]; dup {
				continue
			}
			svc := &Service{
				Host: fqdn, Namespace: se.Meta.Namespace, Addresses: se.Spec.Addresses,
				Resolution: se.Spec.Resolution, Location: se.Spec.Location, Endpoints: eps, Src: se.Key(),
			}
			if svc.Resolution == "" {
				svc.Resolution = "NONE"
			}
			if svc.Location == "" {
				svc.Location = "MESH_EXTERNAL"
			}
			for _, p := range se.Spec.Ports {
				svc.Ports = append(svc.Ports, Port{Number: p.Number, Name: p.Name, Protocol: config.ParseProtocol(p.Protocol), TargetPort: p.TargetPort})
			}
			if (svc.Resolution == "DNS" || svc.Resolution == "DNS_ROUND_ROBIN") && len(eps) == 0 {
				svc.Endpoints = []Endpoint{{Address: fqdn, Weight: 1}}
			}
			r.byHost[fqdn] = svc
			r.hosts = append(r.hosts, fqdn)
		}
	}
	sort.Strings(r.hosts)
	return r
}

func endpointsOf(se *config.Object[config.ServiceEntry], set *config.Set) []Endpoint {
	var eps []Endpoint
	add := func(we *config.WorkloadEntry) {
		w := we.Weight
		if w == 0 {
			w = 1
		}
		eps = append(eps, Endpoint{Address: we.Address, Ports: we.Ports, Labels: we.Labels, Weight: w, Locality: we.Locality})
	}
	for i := range se.Spec.Endpoints {
		add(&se.Spec.Endpoints[i])
	}
	if sel := se.Spec.WorkloadSelector; sel != nil {
		for _, we := range set.WorkloadEntries {
			if we.Meta.Namespace == se.Meta.Namespace && labelsMatch(sel.Labels, we.Spec.Labels) {
				add(&we.Spec)
			}
		}
	}
	return eps
}

// labelsMatch reports whether have holds every label of want.
func labelsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
