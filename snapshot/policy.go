package snapshot

import (
	"strings"

	"github.com/remora-mesh/remora/config"
)

// Policy is the traffic policy of one cluster after Istio's merge of a
// DestinationRule's top level, port-level settings and subset. A nil
// component means the default.
type Policy struct {
	LoadBalancer     *config.LoadBalancerSettings   `json:"loadBalancer,omitempty"`
	ConnectionPool   *config.ConnectionPoolSettings `json:"connectionPool,omitempty"`
	OutlierDetection *config.OutlierDetection       `json:"outlierDetection,omitempty"`
	TLS              *config.ClientTLSSettings      `json:"tls,omitempty"`
}

// forPort resolves a traffic policy for a destination port: a matching
// portLevelSettings entry replaces all four components (omitted ones get
// defaults, not the top-level values).
func forPort(tp *config.TrafficPolicy, port uint32) Policy {
	if tp == nil {
		return Policy{}
	}
	for _, pl := range tp.PortLevelSettings {
		if pl.Port != nil && pl.Port.Number == port {
			return Policy{pl.LoadBalancer, pl.ConnectionPool, pl.OutlierDetection, pl.TLS}
		}
	}
	return Policy{tp.LoadBalancer, tp.ConnectionPool, tp.OutlierDetection, tp.TLS}
}

// mergePolicy is Istio's MergeSubsetTrafficPolicy: the subset's policy
// overrides the port-resolved top-level policy per component; if the
// subset has a portLevelSettings entry for the port, that replaces all
// four.
func mergePolicy(top *config.TrafficPolicy, subset *config.TrafficPolicy, port uint32) Policy {
	p := forPort(top, port)
	if subset == nil {
		return p
	}
	for _, pl := range subset.PortLevelSettings {
		if pl.Port != nil && pl.Port.Number == port {
			return Policy{pl.LoadBalancer, pl.ConnectionPool, pl.OutlierDetection, pl.TLS}
		}
	}
	if subset.LoadBalancer != nil {
		p.LoadBalancer = subset.LoadBalancer
	}
	if subset.ConnectionPool != nil {
		p.ConnectionPool = subset.ConnectionPool
	}
	if subset.OutlierDetection != nil {
		p.OutlierDetection = subset.OutlierDetection
	}
	if subset.TLS != nil {
		p.TLS = subset.TLS
	}
	return p
}

// destRule is the merged view of every DestinationRule for one host:
// the first top-level trafficPolicy, and subsets where the first
// definition of a name wins.
type destRule struct {
	host    string
	policy  *config.TrafficPolicy
	subsets []config.Subset
	src     []string
}

func (d *destRule) subset(name string) (*config.Subset, bool) {
	for i := range d.subsets {
		if d.subsets[i].Name == name {
			return &d.subsets[i], true
		}
	}
	return nil, false
}

// destRules merges the DestinationRules that apply to this proxy by host.
// Rules with a workloadSelector apply only when it selects the proxy's
// labels.
func destRules(set *config.Set, opts Options) map[string]*destRule {
	out := map[string]*destRule{}
	for _, dr := range set.DestinationRules {
		if ws := dr.Spec.WorkloadSelector; ws != nil && !labelsMatch(ws.MatchLabels, opts.Labels) {
			continue
		}
		host := strings.ToLower(config.FQDN(dr.Spec.Host, dr.Meta.Namespace, opts.Domain))
		d := out[host]
		if d == nil {
			d = &destRule{host: host}
			out[host] = d
		}
		if d.policy == nil {
			d.policy = dr.Spec.TrafficPolicy
		}
		for _, s := range dr.Spec.Subsets {
			if _, dup := d.subset(s.Name); !dup {
				d.subsets = append(d.subsets, s)
			}
		}
		d.src = append(d.src, dr.Key())
	}
	return out
}

// ruleFor returns the most specific rule for host: an exact host first,
// then the longest wildcard that covers it.
func ruleFor(rules map[string]*destRule, host string) *destRule {
	if d := rules[host]; d != nil {
		return d
	}
	var best *destRule
	for h, d := range rules {
		if strings.HasPrefix(h, "*") && config.HostMatches(h, host) && (best == nil || len(h) > len(best.host)) {
			best = d
		}
	}
	return best
}
