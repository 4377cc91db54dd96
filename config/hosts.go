package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// FQDN expands a short host as Istio does: a name without a dot becomes
// name.namespace.svc.domain; names with a dot, wildcards and IPs are kept.
func FQDN(host, namespace, domain string) string {
	if host == "" || host == "*" || strings.Contains(host, ".") || strings.Contains(host, ":") {
		return host
	}
	return host + "." + namespace + ".svc." + domain
}

// dns1123Label reports whether s is a lower-case RFC 1123 label.
func dns1123Label(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// dns1123Subdomain reports whether s is a lower-case RFC 1123 subdomain,
// as Kubernetes object names must be.
func dns1123Subdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !dns1123Label(l) {
			return false
		}
	}
	return true
}

// checkHost validates a DNS host name, optionally allowing a leading "*."
// label or a bare "*".
func checkHost(h string, wildcard bool) error {
	if h == "" {
		return fmt.Errorf("host must not be empty")
	}
	if h == "*" {
		if wildcard {
			return nil
		}
		return fmt.Errorf("wildcard host %q is not allowed here", h)
	}
	name := h
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		if !wildcard {
			return fmt.Errorf("wildcard host %q is not allowed here", h)
		}
		name = rest
	}
	if len(name) > 255 {
		return fmt.Errorf("host %q is longer than 255 characters", h)
	}
	for _, l := range strings.Split(name, ".") {
		if !hostLabel(l) {
			return fmt.Errorf("invalid host %q (a DNS name, optionally with a leading \"*.\")", h)
		}
	}
	return nil
}

// hostLabel accepts a DNS label of letters, digits and dashes; Istio
// lower-cases hosts, so upper case is allowed.
func hostLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isIP reports whether s is an IP address.
func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// checkIPOrCIDR validates an address or CIDR block.
func checkIPOrCIDR(s string) error {
	if isIP(s) {
		return nil
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return nil
	}
	return fmt.Errorf("%q is not an IP address or CIDR block", s)
}

// HostMatches reports whether host falls within pattern, as Istio matches
// hosts: equal (case-insensitive), or pattern "*" or "*.suffix" where the
// host ends in ".suffix".
func HostMatches(pattern, host string) bool {
	if pattern == "*" || strings.EqualFold(pattern, host) {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && strings.EqualFold(host[len(host)-len(suffix):], suffix)
	}
	return false
}

// SplitGatewayHost splits a Gateway or Sidecar host "ns/dnsName" into its
// namespace part ("*" when absent) and name.
func SplitGatewayHost(h string) (ns, name string) {
	if i := strings.IndexByte(h, '/'); i >= 0 {
		return h[:i], h[i+1:]
	}
	return "*", h
}
