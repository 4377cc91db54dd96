package iptables

import (
	"fmt"
	"net/netip"
	"strings"
)

// Family is an IP version: which of iptables and ip6tables a Ruleset is for.
type Family int

// The address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "IPv4" or "IPv6".
func (f Family) String() string { return fmt.Sprintf("IPv%d", int(f)) }

func (f Family) restoreCmd() string { return f.tool("iptables-restore") }
func (f Family) saveCmd() string    { return f.tool("iptables-save") }
func (f Family) iptablesCmd() string {
	return f.tool("iptables")
}

func (f Family) tool(name string) string {
	if f == IPv6 {
		return "ip6" + strings.TrimPrefix(name, "ip")
	}
	return name
}

// The chains istio-iptables creates. Every chain a Plan creates is one of
// these; cleanup removes only these.
const (
	chainInbound    = "ISTIO_INBOUND"
	chainRedirect   = "ISTIO_REDIRECT"
	chainInRedirect = "ISTIO_IN_REDIRECT"
	chainOutput     = "ISTIO_OUTPUT"
	chainDivert     = "ISTIO_DIVERT"
	chainTProxy     = "ISTIO_TPROXY"
)

// The tables a Plan touches, in the order they are printed and applied.
const (
	tableMangle = "mangle"
	tableNat    = "nat"
)

var tableOrder = []string{tableMangle, tableNat}

// chainOrder is the order chains are declared in, per table, matching
// istio-iptables' output.
var chainOrder = map[string][]string{
	tableMangle: {chainDivert, chainTProxy, chainInbound},
	tableNat:    {chainInbound, chainRedirect, chainInRedirect, chainOutput},
}

// isOwnChain reports whether name is a chain istio-iptables creates.
func isOwnChain(name string) bool {
	switch name {
	case chainInbound, chainRedirect, chainInRedirect, chainOutput, chainDivert, chainTProxy:
		return true
	}
	return false
}

// A Rule is one iptables rule: appended to Chain, or inserted at Pos.
type Rule struct {
	// Table is "nat" or "mangle".
	Table string
	// Chain is the chain the rule goes in, built-in or ISTIO_*.
	Chain string
	// Pos 0 appends the rule (-A); n > 0 inserts it at position n (-I).
	Pos int
	// Spec is the match and target, e.g. ["-p", "tcp", "-j", "ISTIO_INBOUND"].
	Spec []string
}

// String returns the rule as an iptables-restore line, e.g.
// "-A PREROUTING -p tcp -j ISTIO_INBOUND" or "-I PREROUTING 1 -i eth1 -j RETURN".
func (r Rule) String() string {
	head := "-A " + r.Chain
	if r.Pos > 0 {
		head = fmt.Sprintf("-I %s %d", r.Chain, r.Pos)
	}
	return head + " " + strings.Join(r.Spec, " ")
}

// target returns the rule's -j argument, or "".
func (r Rule) target() string {
	for i := 0; i+1 < len(r.Spec); i++ {
		if r.Spec[i] == "-j" {
			return r.Spec[i+1]
		}
	}
	return ""
}

// builtin reports whether the rule lives in a built-in chain such as
// PREROUTING or OUTPUT rather than one of ours.
func (r Rule) builtin() bool { return !isOwnChain(r.Chain) }

// A Ruleset is everything one of iptables and ip6tables installs, in the
// order istio-iptables installs it.
type Ruleset struct {
	// Family says which binary applies it.
	Family Family
	// Rules in install order; the chains they use are created first.
	Rules []Rule
}

// chains returns the ISTIO_* chains the ruleset creates in table: those
// that hold a rule or are jumped to, in declaration order.
func (rs Ruleset) chains(table string) []string {
	used := map[string]bool{}
	for _, r := range rs.Rules {
		if r.Table != table {
			continue
		}
		used[r.Chain] = true
		used[r.target()] = true
	}
	var out []string
	for _, c := range chainOrder[table] {
		if used[c] {
			out = append(out, c)
		}
	}
	return out
}

// tables returns the tables the ruleset touches, in print order.
func (rs Ruleset) tables() []string {
	var out []string
	for _, t := range tableOrder {
		for _, r := range rs.Rules {
			if r.Table == t {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// rules returns the rules for table, in install order.
func (rs Ruleset) rules(table string) []Rule {
	var out []Rule
	for _, r := range rs.Rules {
		if r.Table == table {
			out = append(out, r)
		}
	}
	return out
}

// Save returns the ruleset in iptables-save form: for each table, the
// chains it creates (":ISTIO_X - [0:0]"), its rules in order, COMMIT.
// Piped into iptables-restore --noflush on a pod with no ISTIO_* state it
// installs exactly the ruleset.
func (rs Ruleset) Save() string {
	var b strings.Builder
	for _, t := range rs.tables() {
		writeTable(&b, rs, t, nil)
	}
	return b.String()
}

// writeTable writes one table's restore block: chain declarations (which
// create or flush), then the delete lines, then the rules.
func writeTable(b *strings.Builder, rs Ruleset, table string, deletes []string) {
	fmt.Fprintf(b, "*%s\n", table)
	for _, c := range rs.chains(table) {
		fmt.Fprintf(b, ":%s - [0:0]\n", c)
	}
	for _, d := range deletes {
		b.WriteString(d + "\n")
	}
	for _, r := range rs.rules(table) {
		b.WriteString(r.String() + "\n")
	}
	b.WriteString("COMMIT\n")
}

// A Route is TPROXY policy routing for one family: packets carrying Mark
// are looked up in Table, which delivers everything locally via lo.
// Equivalent to "ip rule add fwmark MARK lookup TABLE" and
// "ip route add local 0.0.0.0/0 dev lo table TABLE" (::/0 for IPv6).
type Route struct {
	// Family is the rule's and route's address family.
	Family Family
	// Mark is the fwmark that selects Table (-t, 1337 by default).
	Mark uint32
	// Table is the routing table holding the local route (-r, 133 by default).
	Table int
}

// String returns the route as the equivalent ip(8) commands, one per line.
func (r Route) String() string {
	dst := "0.0.0.0/0"
	if r.Family == IPv6 {
		dst = "::/0"
	}
	return fmt.Sprintf("ip -%d rule add fwmark %d lookup %d\nip -%d route add local %s dev lo table %d",
		r.Family, r.Mark, r.Table, r.Family, dst, r.Table)
}

// A Plan is everything an install does and a cleanup undoes.
type Plan struct {
	// Rulesets holds the IPv4 rules, then the IPv6 rules when enabled.
	Rulesets []Ruleset
	// Routes is the policy routing TPROXY needs; empty in REDIRECT mode.
	Routes []Route
	// LoopbackAddrs are added to lo: ::6/128 with IPv6, because IPv6
	// loopback is a single address, unlike 127.0.0.0/8.
	LoopbackAddrs []netip.Prefix
}

// Save returns the plan in iptables-save form, each ruleset headed by a
// comment naming the restore command, then the routing changes as
// comments in ip(8) syntax. The output is deterministic.
func (p Plan) Save() string {
	var b strings.Builder
	for _, rs := range p.Rulesets {
		fmt.Fprintf(&b, "# %s --noflush\n", rs.Family.restoreCmd())
		b.WriteString(rs.Save())
	}
	for _, a := range p.LoopbackAddrs {
		fmt.Fprintf(&b, "# ip -6 addr add %s dev lo\n", a)
	}
	for _, r := range p.Routes {
		for _, line := range strings.Split(r.String(), "\n") {
			b.WriteString("# " + line + "\n")
		}
	}
	return b.String()
}
