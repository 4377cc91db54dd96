package routing

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/remora-mesh/remora/config"
)

// Mesh is the gateway name of every sidecar.
const Mesh = "mesh"

// Service is one registry host as routing needs it.
type Service struct {
	// Host is the fully qualified host name.
	Host string
	// Ports are the service port numbers.
	Ports []uint32
	// Addresses are the VIPs; they are virtual-host domains too, and
	// scope TCP/TLS rules to that address. CIDRs are ignored.
	Addresses []string
}

// Context is what Compile needs to know about the proxy it builds for.
type Context struct {
	// Gateways are the gateways this proxy applies: nil or ["mesh"] for a
	// sidecar, the "namespace/name" of its Gateways for a gateway proxy.
	Gateways []string
	// Namespace is the proxy's namespace (sourceNamespace, host aliases);
	// empty means "default".
	Namespace string
	// Domain is the cluster domain; empty means "cluster.local".
	Domain string
	// Labels are the proxy's labels, for sourceLabels.
	Labels map[string]string
	// Services is the registry view, in registry order.
	Services []Service
	// Ports are a gateway's listener ports; each gets its own virtual
	// hosts. Nil means one table for every port (match.port ignored).
	// Sidecars take their ports from Services, plus 80.
	Ports []uint32
}

// Table is the compiled routing of one proxy: HTTP virtual hosts per
// listener port and the TCP and TLS rules. It is immutable and safe for
// concurrent use.
type Table struct {
	ports  map[uint32]*portTable
	vhosts []*VirtualHost
	tcp    l4Table
	tls    l4Table
}

// compiler holds the state of one Compile.
type compiler struct {
	ctx      Context
	services map[string]*Service
	gateways map[string]bool
	gateway  bool
	warnings []string
	warned   map[string]bool
}

func (c *compiler) warnf(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if !c.warned[w] {
		c.warned[w] = true
		c.warnings = append(c.warnings, w)
	}
}

// normalizeGateway resolves a gateway reference written in namespace ns.
func normalizeGateway(g, ns string) string {
	if g == Mesh || strings.Contains(g, "/") {
		return g
	}
	return ns + "/" + g
}

// Compile builds the table for the proxy described by ctx from vss, in
// load order (the first VirtualService to claim a host wins in sidecars).
// The resources must be validated. The warnings name rules and hosts that
// were dropped.
func Compile(vss []*config.Object[config.VirtualService], ctx Context) (*Table, []string) {
	if ctx.Namespace == "" {
		ctx.Namespace = "default"
	}
	if ctx.Domain == "" {
		ctx.Domain = "cluster.local"
	}
	if len(ctx.Gateways) == 0 {
		ctx.Gateways = []string{Mesh}
	}
	c := &compiler{ctx: ctx, services: map[string]*Service{}, gateways: map[string]bool{}, warned: map[string]bool{}}
	for _, g := range ctx.Gateways {
		c.gateways[g] = true
	}
	c.gateway = !c.gateways[Mesh]
	for i := range ctx.Services {
		s := &ctx.Services[i]
		if h := strings.ToLower(s.Host); c.services[h] == nil {
			c.services[h] = s
		}
	}
	var bound []*config.Object[config.VirtualService]
	for _, vs := range vss {
		if c.bound(vs) {
			bound = append(bound, vs)
		}
	}
	t := &Table{ports: map[uint32]*portTable{}}
	for _, p := range c.httpPorts() {
		pt := &portTable{exact: map[string]*VirtualHost{}, suffix: map[string]*VirtualHost{}}
		var vhs []*VirtualHost
		if c.gateway {
			vhs = c.gatewayHosts(pt, bound, p)
		} else {
			vhs = c.sidecarHosts(pt, bound, p)
		}
		for _, v := range vhs {
			v.idx = buildIndex(v.blocks)
		}
		t.ports[p] = pt
		t.vhosts = append(t.vhosts, vhs...)
	}
	c.compileL4(t, bound)
	return t, c.warnings
}

// bound reports whether vs applies to this proxy.
func (c *compiler) bound(vs *config.Object[config.VirtualService]) bool {
	gws := vs.Spec.Gateways
	if len(gws) == 0 {
		gws = []string{Mesh}
	}
	for _, g := range gws {
		if c.gateways[normalizeGateway(g, vs.Meta.Namespace)] {
			return true
		}
	}
	return false
}

// httpPorts lists the listener ports to build: a gateway's, or every
// registry port plus 80 (for VirtualService hosts outside the registry).
func (c *compiler) httpPorts() []uint32 {
	if c.gateway {
		if len(c.ctx.Ports) == 0 {
			return []uint32{0}
		}
		return slices.Compact(slices.Sorted(slices.Values(c.ctx.Ports)))
	}
	ports := []uint32{80}
	for _, s := range c.ctx.Services {
		ports = append(ports, s.Ports...)
	}
	slices.Sort(ports)
	return slices.Compact(ports)
}

// vsHosts returns the lower-case FQDN hosts of vs.
func (c *compiler) vsHosts(vs *config.Object[config.VirtualService]) []string {
	out := make([]string, 0, len(vs.Spec.Hosts))
	for _, h := range vs.Spec.Hosts {
		out = append(out, strings.ToLower(config.FQDN(h, vs.Meta.Namespace, c.ctx.Domain)))
	}
	return out
}

// serviceDomains are the domains of a registry service for this proxy:
// its host, the aliases Istio generates in the proxy's namespace, and its
// VIPs.
func (c *compiler) serviceDomains(s *Service) []string {
	h := strings.ToLower(s.Host)
	out := append([]string{h}, aliases(h, c.ctx.Namespace, c.ctx.Domain)...)
	for _, a := range s.Addresses {
		if !strings.Contains(a, "/") {
			out = append(out, strings.ToLower(a))
		}
	}
	return out
}

// aliases are the shorter names of a Kubernetes-style host
// (name.ns.svc.domain) that resolve from a client in namespace ns, as
// Istio's GenerateAltVirtualHosts makes them: "reviews", "reviews.default",
// "reviews.default.svc", "reviews.default.svc.cluster" in "default"; only
// the forms with the namespace elsewhere.
func aliases(host, ns, domain string) []string {
	if !strings.HasSuffix(host, ".svc."+domain) {
		return nil
	}
	hl := strings.Split(host, ".")
	pl := strings.Split(ns+".svc."+domain, ".")
	shared := 0
	for shared < len(hl)-1 && shared < len(pl) && hl[len(hl)-1-shared] == pl[len(pl)-1-shared] {
		shared++
	}
	var out []string
	for n := len(hl) - shared; n < len(hl); n++ {
		out = append(out, strings.Join(hl[:n], "."))
	}
	return out
}

func hasPort(ports []uint32, p uint32) bool { return slices.Contains(ports, p) }

func portName(p uint32) string { return strconv.FormatUint(uint64(p), 10) }

// newVHost starts a virtual host named after its first domain.
func newVHost(name string, port uint32, blocks []block) *VirtualHost {
	return &VirtualHost{Name: name + ":" + portName(port), Port: port, blocks: blocks}
}

// sidecarHosts builds port p's virtual hosts for a sidecar: the first
// VirtualService to claim a domain wins; exact hosts claim before
// wildcards; registry hosts left over get Istio's default route.
func (c *compiler) sidecarHosts(pt *portTable, vss []*config.Object[config.VirtualService], p uint32) []*VirtualHost {
	var out []*VirtualHost
	byVS := map[*config.Object[config.VirtualService]]*VirtualHost{}
	claim := func(vs *config.Object[config.VirtualService], host string, domains []string) {
		v := byVS[vs]
		if v.Name == "" {
			v.Name, v.VirtualServices = host+":"+portName(p), []string{vs.Meta.Namespace + "/" + vs.Meta.Name}
			out = append(out, v)
		}
		for _, d := range domains {
			pt.add(d, v)
		}
	}
	for _, vs := range vss {
		// A VirtualService with no rule for this port claims nothing
		// (Istio skips it), so its hosts keep their default route.
		if !c.relevant(vs, p) {
			continue
		}
		if blocks := c.httpBlocks(vs, p); len(blocks) > 0 {
			byVS[vs] = &VirtualHost{Port: p, blocks: blocks}
		}
	}
	for _, wild := range []bool{false, true} {
		for _, vs := range vss {
			if byVS[vs] == nil {
				continue
			}
			for _, h := range c.vsHosts(vs) {
				if strings.HasPrefix(h, "*") != wild {
					continue
				}
				if pt.has(h) {
					c.warnf("%s: host %s is already routed by an earlier VirtualService; ignored on this sidecar", vs.Key(), h)
					continue
				}
				if domains := c.claimDomains(pt, h, p); len(domains) > 0 {
					claim(vs, h, domains)
				}
			}
		}
	}
	for i := range c.ctx.Services {
		s := &c.ctx.Services[i]
		if !hasPort(s.Ports, p) || pt.has(strings.ToLower(s.Host)) {
			continue
		}
		v := newVHost(strings.ToLower(s.Host), p, []block{{route: c.defaultRoute(s, p), name: "default"}})
		for _, d := range c.serviceDomains(s) {
			pt.add(d, v)
		}
		out = append(out, v)
	}
	return out
}

// relevant reports whether a host of vs can claim domains on port p, so
// that rules are compiled only for the ports they may serve.
func (c *compiler) relevant(vs *config.Object[config.VirtualService], p uint32) bool {
	for _, h := range c.vsHosts(vs) {
		if s := c.services[h]; s != nil {
			if hasPort(s.Ports, p) {
				return true
			}
			continue
		}
		if p == 80 {
			return true
		}
		if strings.HasPrefix(h, "*") {
			for i := range c.ctx.Services {
				if s := &c.ctx.Services[i]; hasPort(s.Ports, p) && config.HostMatches(h, s.Host) {
					return true
				}
			}
		}
	}
	return false
}

// claimDomains lists the domains VS host h takes on port p: a registry
// host's domains where it has port p; for a wildcard, itself plus the
// domains of matching registry hosts not yet taken; a host outside the
// registry only on port 80.
func (c *compiler) claimDomains(pt *portTable, h string, p uint32) []string {
	if s := c.services[h]; s != nil {
		if !hasPort(s.Ports, p) {
			return nil
		}
		return c.serviceDomains(s)
	}
	var out []string
	if strings.HasPrefix(h, "*") {
		for i := range c.ctx.Services {
			s := &c.ctx.Services[i]
			if hasPort(s.Ports, p) && config.HostMatches(h, s.Host) && !pt.has(strings.ToLower(s.Host)) {
				out = append(out, c.serviceDomains(s)...)
			}
		}
	}
	if len(out) > 0 || p == 80 {
		out = append([]string{h}, out...)
	}
	return out
}

// gatewayHosts builds port p's virtual hosts for a gateway: one per host,
// merging the rules of every VirtualService for it in order, catch-all
// rules moved last.
func (c *compiler) gatewayHosts(pt *portTable, vss []*config.Object[config.VirtualService], p uint32) []*VirtualHost {
	var out []*VirtualHost
	byHost := map[string]*VirtualHost{}
	for _, vs := range vss {
		blocks := c.httpBlocks(vs, p)
		if len(blocks) == 0 {
			continue
		}
		for _, h := range c.vsHosts(vs) {
			v := byHost[h]
			if v == nil {
				v = newVHost(h, p, nil)
				byHost[h] = v
				pt.add(h, v)
				out = append(out, v)
			}
			v.VirtualServices = append(v.VirtualServices, vs.Meta.Namespace+"/"+vs.Meta.Name)
			v.blocks = append(v.blocks, blocks...)
		}
	}
	for _, v := range out {
		sort.SliceStable(v.blocks, func(i, j int) bool {
			return !v.blocks[i].catchAll() && v.blocks[j].catchAll()
		})
	}
	return out
}

// defaultRoute is Istio's route for a registry host without a
// VirtualService: everything to outbound|p||host, default retries, no
// timeout.
func (c *compiler) defaultRoute(s *Service, p uint32) *Route {
	h := strings.ToLower(s.Host)
	d := Destination{Cluster: clusterName(p, "", h), Host: h, Port: p, Weight: 1}
	return &Route{Name: "default", Rule: -1, Destinations: []Destination{d}, totalWeight: 1, Retry: DefaultRetryPolicy}
}

// Match picks the route for req. It does not allocate unless a matched
// header has several values or a query value is percent-encoded.
func (t *Table) Match(req *Request) Result {
	pt := t.ports[req.Port]
	if pt == nil {
		if pt = t.ports[0]; pt == nil {
			return Result{}
		}
	}
	v := pt.lookup(req.Authority)
	if v == nil {
		return Result{}
	}
	path := req.uriPath()
	i := v.find(req, path)
	if i < 0 {
		return Result{Outcome: NotFound, VirtualHost: v}
	}
	b := &v.blocks[i]
	return Result{Outcome: Matched, VirtualHost: v, Route: b.route, Name: b.name, prefixLen: b.prefixLen(path)}
}

// VirtualHost returns the virtual host that serves authority on port, or
// nil.
func (t *Table) VirtualHost(port uint32, authority string) *VirtualHost {
	pt := t.ports[port]
	if pt == nil {
		if pt = t.ports[0]; pt == nil {
			return nil
		}
	}
	return pt.lookup(authority)
}

// VirtualHosts lists every virtual host, by port then build order.
func (t *Table) VirtualHosts() []*VirtualHost { return t.vhosts }
