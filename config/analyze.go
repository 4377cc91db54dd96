package config

import (
	"fmt"
	"strings"
)

// analyze finds what Istio accepts but `istioctl analyze` flags: references
// that resolve to nothing. Each is a warning at the referring field; at run
// time such a route answers 503 NC, as Envoy does.
func analyze(s *Set, opts Options) Diagnostics {
	a := analyzer{set: s, opts: opts, exact: map[string]bool{}, subsets: map[string]map[string]bool{}, gateways: map[string]bool{}}
	for _, se := range s.ServiceEntries {
		for _, h := range se.Spec.Hosts {
			h = strings.ToLower(FQDN(h, se.Meta.Namespace, opts.Domain))
			if strings.HasPrefix(h, "*") {
				a.wildcards = append(a.wildcards, h)
			} else {
				a.exact[h] = true
			}
		}
	}
	for _, dr := range s.DestinationRules {
		h := FQDN(dr.Spec.Host, dr.Meta.Namespace, opts.Domain)
		if a.subsets[h] == nil {
			a.subsets[h] = map[string]bool{}
		}
		for _, ss := range dr.Spec.Subsets {
			a.subsets[h][ss.Name] = true
		}
	}
	for _, g := range s.Gateways {
		a.gateways[g.Meta.Namespace+"/"+g.Meta.Name] = true
	}
	for _, vs := range s.VirtualServices {
		a.virtualService(vs)
	}
	for _, dr := range s.DestinationRules {
		c := &checker{src: &dr.Src, res: dr.Key(), opts: opts}
		if h := FQDN(dr.Spec.Host, dr.Meta.Namespace, opts.Domain); !a.registered(h) {
			c.warnf("spec.host", "host %q is not registered by any ServiceEntry", h)
		}
		a.ds = append(a.ds, c.ds...)
	}
	return a.ds
}

type analyzer struct {
	set       *Set
	opts      Options
	exact     map[string]bool
	wildcards []string
	subsets   map[string]map[string]bool
	gateways  map[string]bool
	ds        Diagnostics
}

// registered reports whether a ServiceEntry host covers fqdn (or, for a
// wildcard fqdn, whether any registered host falls within it).
func (a *analyzer) registered(fqdn string) bool {
	fqdn = strings.ToLower(fqdn)
	if a.exact[fqdn] {
		return true
	}
	for _, h := range a.wildcards {
		if HostMatches(h, fqdn) || HostMatches(fqdn, h) {
			return true
		}
	}
	if strings.HasPrefix(fqdn, "*") {
		for h := range a.exact {
			if HostMatches(fqdn, h) {
				return true
			}
		}
	}
	return false
}

func (a *analyzer) virtualService(vs *Object[VirtualService]) {
	c := &checker{src: &vs.Src, res: vs.Key(), opts: a.opts}
	ns := vs.Meta.Namespace
	for i, g := range vs.Spec.Gateways {
		if g == "mesh" {
			continue
		}
		key := g
		if len(g) > 0 && !containsSlash(g) {
			key = ns + "/" + g
		}
		if !a.gateways[key] {
			c.warnf(fmt.Sprintf("spec.gateways[%d]", i), "gateway %q is not defined", key)
		}
	}
	dest := func(p string, d *Destination) {
		h := FQDN(d.Host, ns, a.opts.Domain)
		if !a.registered(h) {
			c.warnf(p+".host", "host %q is not registered by any ServiceEntry: requests get 503 NC", h)
			return
		}
		if d.Subset != "" && !a.subsets[h][d.Subset] {
			c.warnf(p+".subset", "subset %q of host %q is not defined by any DestinationRule: requests get 503 NC", d.Subset, h)
		}
	}
	for i, r := range vs.Spec.HTTP {
		p := fmt.Sprintf("spec.http[%d]", i)
		for j := range r.Route {
			dest(fmt.Sprintf("%s.route[%d].destination", p, j), &r.Route[j].Destination)
		}
		if r.Mirror != nil {
			dest(p+".mirror", r.Mirror)
		}
		for j := range r.Mirrors {
			dest(fmt.Sprintf("%s.mirrors[%d].destination", p, j), &r.Mirrors[j].Destination)
		}
	}
	for i, r := range vs.Spec.TCP {
		for j := range r.Route {
			dest(fmt.Sprintf("spec.tcp[%d].route[%d].destination", i, j), &r.Route[j].Destination)
		}
	}
	for i, r := range vs.Spec.TLS {
		for j := range r.Route {
			dest(fmt.Sprintf("spec.tls[%d].route[%d].destination", i, j), &r.Route[j].Destination)
		}
	}
	a.ds = append(a.ds, c.ds...)
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}
