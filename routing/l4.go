package routing

import (
	"net/netip"
	"strings"

	"github.com/remora-mesh/remora/config"
)

// Conn is what MatchTCP and MatchTLS read from one connection.
type Conn struct {
	// DstIP and Port are the original destination.
	DstIP netip.Addr
	Port  uint32
	// SNI is the server name from the TLS ClientHello ("" for none).
	SNI string
}

// L4Route is the compiled action of one tcp or tls rule (or a registry
// host's default). It is immutable.
type L4Route struct {
	// VirtualService is "namespace/name" ("" for a default route); Rule
	// is the index in its tcp or tls list.
	VirtualService string
	Rule           int
	// Destinations have positive relative weights.
	Destinations []Destination
	totalWeight  uint64
}

// Pick chooses a destination for one connection by weight, from a
// uniformly random r.
func (r *L4Route) Pick(rnd uint64) *Destination { return pick(r.Destinations, r.totalWeight, rnd) }

// L4Result is the outcome of MatchTCP or MatchTLS.
type L4Result struct {
	// Outcome is UnknownHost when no listener covers the destination
	// (passthrough or close, by outbound policy), NotFound when a
	// VirtualService covers it but no rule matched (Istio's passthrough
	// filter chain in sidecars, a closed connection on gateways), and
	// Matched when Route is set.
	Outcome Outcome
	Route   *L4Route
}

// l4Key names a listener: a VIP and port, or the zero Addr for every
// address; port 0 means every port.
type l4Key struct {
	addr netip.Addr
	port uint32
}

type l4Entry struct {
	route   *L4Route
	port    uint32
	subnets []netip.Prefix
	sni     []string
}

type l4Listener struct {
	entries []l4Entry
	dflt    *L4Route
	owner   string // the VirtualService that claimed it (sidecars)
}

// l4Table holds the TCP or TLS listeners.
type l4Table struct {
	listeners map[l4Key]*l4Listener
}

// listener returns the listener for k, creating it.
func (t *l4Table) listener(k l4Key) *l4Listener {
	if t.listeners == nil {
		t.listeners = map[l4Key]*l4Listener{}
	}
	l := t.listeners[k]
	if l == nil {
		l = &l4Listener{}
		t.listeners[k] = l
	}
	return l
}

// match finds the listener for c and its most specific entry: longest
// destination subnet, then exact SNI, then longest SNI wildcard; ties go
// to the earlier rule, as Envoy's filter-chain match does.
func (t *l4Table) match(c *Conn) L4Result {
	for _, k := range [...]l4Key{{c.DstIP, c.Port}, {netip.Addr{}, c.Port}, {netip.Addr{}, 0}} {
		l := t.listeners[k]
		if l == nil {
			continue
		}
		best, score := -1, -1
		for i := range l.entries {
			if s := l.entries[i].score(c); s > score {
				best, score = i, s
			}
		}
		switch {
		case best >= 0:
			return L4Result{Outcome: Matched, Route: l.entries[best].route}
		case l.dflt != nil:
			return L4Result{Outcome: Matched, Route: l.dflt}
		}
		return L4Result{Outcome: NotFound}
	}
	return L4Result{}
}

// score is how specifically e matches c, or -1 when it does not.
func (e *l4Entry) score(c *Conn) int {
	if e.port != 0 && e.port != c.Port {
		return -1
	}
	subnet := 0
	if len(e.subnets) > 0 {
		subnet = -1
		for _, p := range e.subnets {
			if p.Contains(c.DstIP) && p.Bits()+1 > subnet {
				subnet = p.Bits() + 1
			}
		}
		if subnet < 0 {
			return -1
		}
	}
	sni := 0
	if len(e.sni) > 0 {
		sni = -1
		for _, h := range e.sni {
			switch {
			case !config.HostMatches(h, c.SNI) || c.SNI == "":
			case h[0] != '*':
				sni = 1 << 10
			case len(h) > sni:
				sni = len(h)
			}
		}
		if sni < 0 {
			return -1
		}
	}
	return subnet<<11 | sni
}

// MatchTCP picks the tcp rule (or the registry default) for a connection.
func (t *Table) MatchTCP(c Conn) L4Result { return t.tcp.match(&c) }

// MatchTLS picks the tls rule for an unterminated TLS connection by SNI.
// UnknownHost means no tls rule covers the destination: use MatchTCP.
func (t *Table) MatchTLS(c Conn) L4Result { return t.tls.match(&c) }

// l4Keys lists the listeners the hosts of vs cover: each VIP:port of the
// matching registry hosts, or every address on the port of hosts without
// a VIP; on a gateway, every address on its ports.
func (c *compiler) l4Keys(vs *config.Object[config.VirtualService]) []l4Key {
	var out []l4Key
	if c.gateway {
		for _, p := range c.httpPorts() {
			out = append(out, l4Key{port: p})
		}
		return out
	}
	for _, h := range c.vsHosts(vs) {
		found := false
		for i := range c.ctx.Services {
			s := &c.ctx.Services[i]
			if !config.HostMatches(h, strings.ToLower(s.Host)) {
				continue
			}
			found = true
			out = append(out, serviceKeys(s)...)
		}
		if !found {
			c.warnf("%s: host %s is not in the registry; its tcp/tls rules are not applied", vs.Key(), h)
		}
	}
	return out
}

// serviceKeys lists the listeners of a registry service.
func serviceKeys(s *Service) []l4Key {
	var out []l4Key
	var addrs []netip.Addr
	for _, a := range s.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			addrs = append(addrs, ip)
		}
	}
	for _, p := range s.Ports {
		if len(addrs) == 0 {
			out = append(out, l4Key{port: p})
		}
		for _, ip := range addrs {
			out = append(out, l4Key{addr: ip, port: p})
		}
	}
	return out
}

// l4Route compiles the destinations of a tcp or tls rule.
func (c *compiler) l4Route(vs *config.Object[config.VirtualService], i int, rds []config.RouteDestination, port uint32) *L4Route {
	r := &L4Route{VirtualService: vs.Meta.Namespace + "/" + vs.Meta.Name, Rule: i}
	for j := range rds {
		if len(rds) > 1 && rds[j].Weight <= 0 {
			continue
		}
		d := c.destination(&rds[j].Destination, vs.Meta.Namespace, port)
		if len(rds) > 1 {
			d.Weight = uint32(rds[j].Weight)
		}
		r.Destinations = append(r.Destinations, d)
		r.totalWeight += uint64(d.Weight)
	}
	return r
}

// compileL4 fills the TCP and TLS tables, then the registry defaults on
// listeners no tcp rule covers.
func (c *compiler) compileL4(t *Table, vss []*config.Object[config.VirtualService]) {
	for _, vs := range vss {
		if len(vs.Spec.TCP) == 0 && len(vs.Spec.TLS) == 0 {
			continue
		}
		for _, k := range c.l4Keys(vs) {
			c.tcpRules(&t.tcp, k, vs)
			c.tlsRules(&t.tls, k, vs)
		}
	}
	if c.gateway {
		return
	}
	for i := range c.ctx.Services {
		s := &c.ctx.Services[i]
		for _, k := range serviceKeys(s) {
			if l := t.tcp.listener(k); l.dflt == nil && len(l.entries) == 0 {
				h := strings.ToLower(s.Host)
				d := Destination{Cluster: clusterName(k.port, "", h), Host: h, Port: k.port, Weight: 1}
				l.dflt = &L4Route{Rule: -1, Destinations: []Destination{d}, totalWeight: 1}
			}
		}
	}
}

// claim reports whether vs may add rules to l: on sidecars the first
// VirtualService to claim a listener wins.
func (c *compiler) claim(l *l4Listener, vs *config.Object[config.VirtualService], kind string) bool {
	key := vs.Key()
	if c.gateway || l.owner == "" || l.owner == key {
		l.owner = key
		return true
	}
	c.warnf("%s: %s rules for a destination %s already routes; ignored on this sidecar", key, kind, l.owner)
	return false
}

// prefixes parses destinationSubnets (addresses become host prefixes).
func prefixes(ss []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// tcpRules adds the tcp rules of vs to listener k, stopping after a rule
// that matches every connection.
func (c *compiler) tcpRules(t *l4Table, k l4Key, vs *config.Object[config.VirtualService]) {
	if len(vs.Spec.TCP) == 0 {
		return
	}
	l := t.listener(k)
	if !c.claim(l, vs, "tcp") {
		return
	}
	for i := range vs.Spec.TCP {
		r := &vs.Spec.TCP[i]
		rt := c.l4Route(vs, i, r.Route, k.port)
		if len(r.Match) == 0 {
			l.entries = append(l.entries, l4Entry{route: rt})
			return
		}
		for j := range r.Match {
			m := &r.Match[j]
			if !c.keepMatch(k.port, m.Port, m.SourceLabels, m.Gateways, m.SourceNamespace, vs.Meta.Namespace) {
				continue
			}
			e := l4Entry{route: rt, port: m.Port, subnets: prefixes(m.DestinationSubnets)}
			l.entries = append(l.entries, e)
			if e.port == 0 && len(e.subnets) == 0 {
				return
			}
		}
	}
}

// tlsRules adds the tls rules of vs to listener k.
func (c *compiler) tlsRules(t *l4Table, k l4Key, vs *config.Object[config.VirtualService]) {
	if len(vs.Spec.TLS) == 0 {
		return
	}
	l := t.listener(k)
	if !c.claim(l, vs, "tls") {
		return
	}
	for i := range vs.Spec.TLS {
		r := &vs.Spec.TLS[i]
		rt := c.l4Route(vs, i, r.Route, k.port)
		for j := range r.Match {
			m := &r.Match[j]
			if !c.keepMatch(k.port, m.Port, m.SourceLabels, m.Gateways, m.SourceNamespace, vs.Meta.Namespace) {
				continue
			}
			e := l4Entry{route: rt, port: m.Port, subnets: prefixes(m.DestinationSubnets)}
			for _, h := range m.SNIHosts {
				e.sni = append(e.sni, strings.ToLower(h))
			}
			l.entries = append(l.entries, e)
		}
	}
}
