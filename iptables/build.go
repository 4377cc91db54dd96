package iptables

import (
	"net/netip"
	"strconv"
)

// Build returns the rules, routes and addresses istio-iptables installs for
// c, in its order (order matters: rules are evaluated top down and some
// are inserted at position 1). It validates c first and fills in defaults
// for zero fields. Build is pure.
func Build(c Config) (Plan, error) {
	if err := c.Validate(); err != nil {
		return Plan{}, err
	}
	c = c.withDefaults()
	p := Plan{Rulesets: []Ruleset{buildRuleset(c, IPv4)}}
	if c.IPv6 {
		p.Rulesets = append(p.Rulesets, buildRuleset(c, IPv6))
		p.LoopbackAddrs = []netip.Prefix{netip.MustParsePrefix("::6/128")}
	}
	if c.Mode == TProxy {
		for _, rs := range p.Rulesets {
			p.Routes = append(p.Routes, Route{Family: rs.Family, Mark: c.TProxyMark, Table: c.TProxyTable})
		}
	}
	return p, nil
}

// builder accumulates one family's rules in install order.
type builder struct {
	c     Config
	fam   Family
	rules []Rule
	// localhost is what counts as "localhost": 127.0.0.1/32 or ::1/128.
	localhost string
	// passthrough is the source the proxy binds when forwarding inbound
	// traffic to the app: 127.0.0.6/32 or ::6/128.
	passthrough string
}

func (b *builder) add(table, chain string, spec ...string) {
	b.rules = append(b.rules, Rule{Table: table, Chain: chain, Spec: spec})
}

func (b *builder) insert(table, chain string, pos int, spec ...string) {
	b.rules = append(b.rules, Rule{Table: table, Chain: chain, Pos: pos, Spec: spec})
}

func buildRuleset(c Config, fam Family) Ruleset {
	b := &builder{c: c, fam: fam, localhost: "127.0.0.1/32", passthrough: "127.0.0.6/32"}
	if fam == IPv6 {
		b.localhost, b.passthrough = "::1/128", "::6/128"
	}
	b.excludeInterfaces()
	for _, ifc := range c.KubeVirtInterfaces {
		b.insert(tableNat, "PREROUTING", 1, "-i", ifc, "-j", "RETURN")
	}
	b.add(tableNat, chainInbound, "-p", "tcp", "--dport", port(c.TunnelPort), "-j", "RETURN")
	b.add(tableNat, chainRedirect, "-p", "tcp", "-j", "REDIRECT", "--to-ports", port(c.OutboundPort))
	b.add(tableNat, chainInRedirect, "-p", "tcp", "-j", "REDIRECT", "--to-ports", port(c.InboundPort))
	b.inbound()
	b.output()
	if c.Mode == TProxy {
		b.tproxyMarks()
	}
	return Ruleset{Family: fam, Rules: b.rules}
}

// excludeInterfaces makes the -c interfaces bypass capture entirely.
func (b *builder) excludeInterfaces() {
	tables := []string{tableNat}
	if b.c.Mode == TProxy {
		tables = append(tables, tableMangle)
	}
	for _, t := range tables {
		for _, ifc := range b.c.ExcludeInterfaces {
			b.add(t, "PREROUTING", "-i", ifc, "-j", "RETURN")
			b.add(t, "OUTPUT", "-o", ifc, "-j", "RETURN")
		}
	}
}

// inbound captures inbound TCP on the -b ports: nat REDIRECT to the
// inbound port, or mangle TPROXY.
func (b *builder) inbound() {
	c := b.c
	if c.InboundPorts.Empty() {
		return
	}
	table := tableNat
	if c.Mode == TProxy {
		table = tableMangle
		b.add(table, chainDivert, "-j", "MARK", "--set-mark", strconv.FormatUint(uint64(c.TProxyMark), 10))
		b.add(table, chainDivert, "-j", "ACCEPT")
		b.add(table, chainTProxy, "!", "-d", b.localhost, "-p", "tcp", "-j", "TPROXY",
			"--tproxy-mark", strconv.FormatUint(uint64(c.TProxyMark), 10)+"/0xffffffff", "--on-port", port(c.InboundPort))
	}
	b.add(table, "PREROUTING", "-p", "tcp", "-j", chainInbound)
	if c.InboundPorts.All {
		for _, p := range c.InboundExcludePorts {
			b.add(table, chainInbound, "-p", "tcp", "--dport", port(p), "-j", "RETURN")
		}
		b.captureInbound(table, nil)
		return
	}
	for _, p := range c.InboundPorts.List {
		b.captureInbound(table, []string{"--dport", port(p)})
	}
}

// captureInbound sends inbound TCP matching match to the inbound port.
func (b *builder) captureInbound(table string, match []string) {
	spec := func(rest ...string) []string {
		return append(append([]string{"-p", "tcp"}, match...), rest...)
	}
	if b.c.Mode == TProxy {
		b.add(table, chainInbound, spec("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", chainDivert)...)
		b.add(table, chainInbound, spec("-j", chainTProxy)...)
		return
	}
	b.add(table, chainInbound, spec("-j", chainInRedirect)...)
}

// output builds nat ISTIO_OUTPUT: what locally generated traffic is sent
// to the outbound port, and what is left alone (research §14.3).
func (b *builder) output() {
	c := b.c
	b.add(tableNat, "OUTPUT", "-j", chainOutput)
	for _, p := range c.OutboundExcludePorts {
		b.add(tableNat, chainOutput, "-p", "tcp", "--dport", port(p), "-j", "RETURN")
		b.add(tableNat, chainOutput, "-p", "udp", "--dport", port(p), "-j", "RETURN")
	}
	b.add(tableNat, chainOutput, "-o", "lo", "-s", b.passthrough, "-j", "RETURN")
	includes := b.family(c.OutboundCIDRs.List)
	loopbackInclude := false
	for _, p := range includes {
		loopbackInclude = loopbackInclude || p.Addr().IsLoopback()
	}
	b.owners("--uid-owner", c.ProxyUIDs, loopbackInclude)
	b.owners("--gid-owner", c.ProxyGIDs, loopbackInclude)
	b.add(tableNat, chainOutput, "-d", b.localhost, "-j", "RETURN")
	for _, p := range b.family(c.OutboundExcludeCIDRs) {
		b.add(tableNat, chainOutput, "-d", p.String(), "-j", "RETURN")
	}
	for _, p := range c.OutboundPorts {
		b.add(tableNat, chainOutput, "-p", "tcp", "--dport", port(p), "-j", chainRedirect)
	}
	if c.OutboundCIDRs.All {
		b.add(tableNat, chainOutput, "-j", chainRedirect)
		for _, ifc := range c.KubeVirtInterfaces {
			b.insert(tableNat, "PREROUTING", 1, "-i", ifc, "-j", chainRedirect)
		}
		return
	}
	for _, p := range includes {
		for _, ifc := range c.KubeVirtInterfaces {
			b.insert(tableNat, "PREROUTING", 1, "-i", ifc, "-d", p.String(), "-j", chainRedirect)
		}
		b.add(tableNat, chainOutput, "-d", p.String(), "-j", chainRedirect)
	}
}

// owners adds, per proxy uid or gid: the proxy reaching its own pod over
// lo goes inbound; other processes over lo are left alone (unless an
// include range is loopback); all other proxy traffic is left alone.
func (b *builder) owners(flag string, ids []string, loopbackInclude bool) {
	for _, id := range ids {
		b.add(tableNat, chainOutput, "-o", "lo", "!", "-d", b.localhost, "-p", "tcp",
			"!", "--dport", port(b.c.TunnelPort), "-m", "owner", flag, id, "-j", chainInRedirect)
		if !loopbackInclude {
			b.add(tableNat, chainOutput, "-o", "lo", "-m", "owner", "!", flag, id, "-j", "RETURN")
		}
		b.add(tableNat, chainOutput, "-m", "owner", flag, id, "-j", "RETURN")
	}
}

// tproxyMarks adds the mangle rules that keep TPROXY'd connections' marks
// on the reply path and stop re-interception.
func (b *builder) tproxyMarks() {
	c := b.c
	mark := strconv.FormatUint(uint64(c.TProxyMark), 10)
	out := strconv.Itoa(outboundMark)
	b.add(tableMangle, "PREROUTING", "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "CONNMARK", "--save-mark")
	b.add(tableMangle, "OUTPUT", "-p", "tcp", "-o", "lo", "-m", "mark", "--mark", mark, "-j", "RETURN")
	for _, owner := range []struct {
		flag string
		ids  []string
	}{{"--uid-owner", c.ProxyUIDs}, {"--gid-owner", c.ProxyGIDs}} {
		for _, id := range owner.ids {
			b.add(tableMangle, "OUTPUT", "!", "-d", b.localhost, "-p", "tcp", "-o", "lo",
				"-m", "owner", owner.flag, id, "-j", "MARK", "--set-mark", out)
		}
	}
	b.add(tableMangle, "OUTPUT", "-p", "tcp", "-m", "connmark", "--mark", mark, "-j", "CONNMARK", "--restore-mark")
	b.insert(tableMangle, chainInbound, 1, "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "RETURN")
	b.insert(tableMangle, chainInbound, 2, "-p", "tcp", "-s", b.passthrough, "-i", "lo", "-j", "RETURN")
	b.insert(tableMangle, chainInbound, 3, "-p", "tcp", "-i", "lo", "-m", "mark", "!", "--mark", out, "-j", "RETURN")
}

// family returns the prefixes of b's address family.
func (b *builder) family(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == (b.fam == IPv4) {
			out = append(out, p)
		}
	}
	return out
}

func port(p uint16) string { return strconv.Itoa(int(p)) }
