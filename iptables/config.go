// Package iptables builds, installs and removes the traffic-capture rules
// istio-iptables installs in a pod: nat REDIRECT of outbound TCP to the
// proxy's outbound port and of inbound TCP to its inbound port, or mangle
// TPROXY of inbound TCP plus policy routing.
//
// Build is pure: it turns a Config into a Plan, whose Save method prints
// the rules in iptables-save form. An Applier installs a Plan atomically
// with iptables-restore --noflush and removes it again; install and
// cleanup are both derived from the same Plan, so they cannot drift.
package iptables

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Mode is how inbound traffic is intercepted.
type Mode string

// The inbound interception modes istio-iptables supports.
const (
	// Redirect captures inbound TCP with nat REDIRECT to the inbound port.
	Redirect Mode = "REDIRECT"
	// TProxy captures inbound TCP with mangle TPROXY, keeping the original
	// source and destination, and needs policy routing.
	TProxy Mode = "TPROXY"
)

// Defaults, as the Istio sidecar injector passes them to istio-iptables.
const (
	DefaultOutboundPort = 15001
	DefaultInboundPort  = 15006
	DefaultTunnelPort   = 15008
	DefaultProxyUID     = "1337"
	DefaultTProxyMark   = 1337
	DefaultTProxyTable  = 133
	// outboundMark marks proxy-to-own-pod traffic over lo that must still
	// be intercepted inbound in TPROXY mode.
	outboundMark = 1338
)

// DefaultInboundExcludePorts are the proxy's own ports reached from
// outside the pod (Prometheus, health, agent status): never captured.
var DefaultInboundExcludePorts = []uint16{15090, 15021, 15020}

// Ports is a set of TCP ports: every port, or the listed ones.
// The zero Ports is empty.
type Ports struct {
	// All means every port; List is then ignored.
	All bool
	// List holds ports in the order given; duplicates are kept.
	List []uint16
}

// Empty reports whether p selects no port.
func (p Ports) Empty() bool { return !p.All && len(p.List) == 0 }

// CIDRs is a set of address ranges: every address, or the listed ranges.
// The zero CIDRs is empty.
type CIDRs struct {
	// All means every address; List is then ignored.
	All bool
	// List holds masked prefixes of either family, in the order given.
	List []netip.Prefix
}

// Config is what to capture, with istio-iptables' meanings. DefaultConfig
// returns what the Istio injector asks for.
type Config struct {
	// OutboundPort (-p) receives captured outbound TCP; 0 means 15001.
	OutboundPort uint16
	// InboundPort (-z) receives captured inbound TCP; 0 means 15006.
	InboundPort uint16
	// TunnelPort (-e) is the HBONE port, never captured inbound; 0 means 15008.
	TunnelPort uint16
	// ProxyUIDs (-u) own the proxy's traffic, which is never captured
	// again; nil means 1337.
	ProxyUIDs []string
	// ProxyGIDs (-g) are the same by group; nil means ProxyUIDs.
	ProxyGIDs []string
	// Mode (-m) is the inbound interception mode; "" means Redirect.
	Mode Mode
	// InboundPorts (-b) are captured inbound; empty captures nothing inbound.
	InboundPorts Ports
	// InboundExcludePorts (-d) are not captured inbound; used only when
	// InboundPorts.All.
	InboundExcludePorts []uint16
	// OutboundCIDRs (-i) are captured outbound; empty captures no range.
	OutboundCIDRs CIDRs
	// OutboundExcludeCIDRs (-x) are never captured outbound.
	OutboundExcludeCIDRs []netip.Prefix
	// OutboundPorts (-q) are always captured outbound, even outside
	// OutboundCIDRs (but not inside OutboundExcludeCIDRs).
	OutboundPorts []uint16
	// OutboundExcludePorts (-o) are never captured outbound (TCP and UDP).
	OutboundExcludePorts []uint16
	// ExcludeInterfaces (-c) are bypassed entirely.
	ExcludeInterfaces []string
	// KubeVirtInterfaces (-k) carry inbound traffic treated as outbound.
	KubeVirtInterfaces []string
	// TProxyMark (-t) marks intercepted inbound packets; 0 means 1337.
	TProxyMark uint32
	// TProxyTable (-r) is the policy-routing table for TPROXY; 0 means 133.
	TProxyTable int
	// IPv6 also installs the rules with ip6tables (dual stack); false
	// leaves IPv6 uncaptured.
	IPv6 bool
}

// DefaultConfig returns the configuration the Istio injector passes:
// -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x "" -b '*' -d 15090,15021,15020.
func DefaultConfig() Config {
	return Config{
		OutboundPort:        DefaultOutboundPort,
		InboundPort:         DefaultInboundPort,
		TunnelPort:          DefaultTunnelPort,
		ProxyUIDs:           []string{DefaultProxyUID},
		Mode:                Redirect,
		InboundPorts:        Ports{All: true},
		InboundExcludePorts: append([]uint16(nil), DefaultInboundExcludePorts...),
		OutboundCIDRs:       CIDRs{All: true},
		TProxyMark:          DefaultTProxyMark,
		TProxyTable:         DefaultTProxyTable,
	}
}

// withDefaults returns c with every zero field that has a default filled in.
func (c Config) withDefaults() Config {
	if c.OutboundPort == 0 {
		c.OutboundPort = DefaultOutboundPort
	}
	if c.InboundPort == 0 {
		c.InboundPort = DefaultInboundPort
	}
	if c.TunnelPort == 0 {
		c.TunnelPort = DefaultTunnelPort
	}
	if len(c.ProxyUIDs) == 0 {
		c.ProxyUIDs = []string{DefaultProxyUID}
	}
	if len(c.ProxyGIDs) == 0 {
		c.ProxyGIDs = c.ProxyUIDs
	}
	if c.Mode == "" {
		c.Mode = Redirect
	}
	c.ExcludeInterfaces = dedupe(c.ExcludeInterfaces)
	c.KubeVirtInterfaces = dedupe(c.KubeVirtInterfaces)
	if c.TProxyMark == 0 {
		c.TProxyMark = DefaultTProxyMark
	}
	if c.TProxyTable == 0 {
		c.TProxyTable = DefaultTProxyTable
	}
	return c
}

// Validate reports every problem in c, joined, or nil.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Mode != Redirect && c.Mode != TProxy {
		errs = append(errs, fmt.Errorf("interception mode %q: want REDIRECT or TPROXY", c.Mode))
	}
	for _, id := range append(append([]string(nil), c.ProxyUIDs...), c.ProxyGIDs...) {
		if !validName(id) {
			errs = append(errs, fmt.Errorf("proxy uid/gid %q: want a number or a user/group name", id))
		}
	}
	for _, name := range append(append([]string(nil), c.ExcludeInterfaces...), c.KubeVirtInterfaces...) {
		if !validName(name) || len(name) > 15 {
			errs = append(errs, fmt.Errorf("interface %q: want a Linux interface name", name))
		}
	}
	for _, lists := range [][]uint16{c.InboundPorts.List, c.InboundExcludePorts, c.OutboundPorts, c.OutboundExcludePorts} {
		for _, p := range lists {
			if p == 0 {
				errs = append(errs, errors.New("port 0: want 1-65535"))
			}
		}
	}
	for _, p := range append(append([]netip.Prefix(nil), c.OutboundCIDRs.List...), c.OutboundExcludeCIDRs...) {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("address range %v: not a valid CIDR", p))
		}
	}
	if c.TProxyTable < 0 {
		errs = append(errs, fmt.Errorf("tproxy route table %d: want a positive number", c.TProxyTable))
	}
	return errors.Join(errs...)
}

// validName reports whether s is safe as one iptables argument: a user,
// group or interface name (letters, digits, '_', '-', '.').
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '-' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// ParsePorts parses an istio-iptables port flag: "*" is every port, ""
// none, otherwise a comma-separated list of port numbers.
func ParsePorts(s string) (Ports, error) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return Ports{All: true}, nil
	}
	list, err := ParsePortList(s)
	return Ports{List: list}, err
}

// ParsePortList parses a comma-separated list of port numbers; "" is none
// and "*" is an error.
func ParsePortList(s string) ([]uint16, error) {
	var out []uint16
	for _, f := range splitList(s) {
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("port %q: want a number 1-65535", f)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

// ParseCIDRs parses an istio-iptables address-range flag: "*" is every
// address, "" none, otherwise a comma-separated list of CIDRs or bare
// addresses (a bare address is a /32 or /128). Prefixes are masked.
func ParseCIDRs(s string) (CIDRs, error) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return CIDRs{All: true}, nil
	}
	list, err := ParseCIDRList(s)
	return CIDRs{List: list}, err
}

// ParseCIDRList parses a comma-separated list of CIDRs or bare addresses;
// "" is none and "*" is an error.
func ParseCIDRList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitList(s) {
		var p netip.Prefix
		var err error
		if strings.Contains(f, "/") {
			p, err = netip.ParsePrefix(f)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(f); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("address range %q: want a CIDR such as 10.0.0.0/8", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ParseList splits a comma-separated list of names, dropping empty items.
func ParseList(s string) []string { return splitList(s) }

// dedupe returns list without repeats, first occurrence kept: the same
// rule twice in a built-in chain could not be removed reliably.
func dedupe(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
