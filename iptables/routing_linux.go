package iptables

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// handle returns a netlink handle in a's network namespace.
func (a *Applier) handle() (*netlink.Handle, error) {
	if a.Netns == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromName(a.Netns)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", a.Netns, err)
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// loopback opens a netlink handle in the applier's namespace and finds
// its loopback interface; the caller closes the handle.
func (a *Applier) loopback() (*netlink.Handle, netlink.Link, error) {
	h, err := a.handle()
	if err != nil {
		return nil, nil, err
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("loopback interface: %w", err)
	}
	return h, lo, nil
}

// addRouting adds p's loopback addresses, policy rules and local routes,
// leaving any already present as they are.
func (a *Applier) addRouting(p Plan) error {
	if len(p.Routes) == 0 && len(p.LoopbackAddrs) == 0 {
		return nil
	}
	h, lo, err := a.loopback()
	if err != nil {
		return err
	}
	defer h.Close()
	for _, pfx := range p.LoopbackAddrs {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())}}
		if err := h.AddrReplace(lo, addr); err != nil {
			return netlinkError(fmt.Sprintf("ip addr add %s dev lo", pfx), err)
		}
	}
	for _, r := range p.Routes {
		rules, err := findRules(h, r)
		if err != nil {
			return err
		}
		if len(rules) == 0 {
			if err := h.RuleAdd(netlinkRule(r)); err != nil {
				return netlinkError(fmt.Sprintf("ip -%d rule add fwmark %d lookup %d", r.Family, r.Mark, r.Table), err)
			}
		}
		if err := h.RouteReplace(localRoute(r, lo)); err != nil {
			return netlinkError(fmt.Sprintf("ip -%d route add local default dev lo table %d", r.Family, r.Table), err)
		}
	}
	return nil
}

// removeRouting deletes what addRouting adds; absent entries are fine.
func (a *Applier) removeRouting(p Plan) error {
	if len(p.Routes) == 0 && len(p.LoopbackAddrs) == 0 {
		return nil
	}
	h, lo, err := a.loopback()
	if err != nil {
		return err
	}
	defer h.Close()
	for _, r := range p.Routes {
		rules, err := findRules(h, r)
		if err != nil {
			return err
		}
		for i := range rules {
			if err := h.RuleDel(&rules[i]); err != nil && !absent(err) {
				return netlinkError(fmt.Sprintf("ip -%d rule del fwmark %d lookup %d", r.Family, r.Mark, r.Table), err)
			}
		}
		if err := h.RouteDel(localRoute(r, lo)); err != nil && !absent(err) {
			return netlinkError(fmt.Sprintf("ip -%d route del local default table %d", r.Family, r.Table), err)
		}
	}
	for _, pfx := range p.LoopbackAddrs {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())}}
		if err := h.AddrDel(lo, addr); err != nil && !absent(err) {
			return netlinkError(fmt.Sprintf("ip addr del %s dev lo", pfx), err)
		}
	}
	return nil
}

// findRules returns the policy rules "fwmark r.Mark lookup r.Table".
func findRules(h *netlink.Handle, r Route) ([]netlink.Rule, error) {
	all, err := h.RuleList(nlFamily(r.Family))
	if err != nil {
		return nil, netlinkError("ip rule list", err)
	}
	var out []netlink.Rule
	for _, x := range all {
		if x.Mark == r.Mark && x.Table == r.Table && (x.Mask == nil || *x.Mask == 0xffffffff) {
			out = append(out, x)
		}
	}
	return out, nil
}

func netlinkRule(r Route) *netlink.Rule {
	rule := netlink.NewRule()
	rule.Family = nlFamily(r.Family)
	rule.Mark = r.Mark
	rule.Table = r.Table
	return rule
}

// localRoute is "local 0.0.0.0/0 dev lo table T" (::/0 for IPv6).
func localRoute(r Route, lo netlink.Link) *netlink.Route {
	bits := 32
	ip := net.IPv4zero.To4()
	if r.Family == IPv6 {
		bits, ip = 128, net.IPv6zero
	}
	return &netlink.Route{
		Family:    nlFamily(r.Family),
		LinkIndex: lo.Attrs().Index,
		Dst:       &net.IPNet{IP: ip, Mask: net.CIDRMask(0, bits)},
		Table:     r.Table,
		Type:      unix.RTN_LOCAL,
		Scope:     netlink.SCOPE_HOST,
	}
}

func nlFamily(f Family) int {
	if f == IPv6 {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// absent reports whether a netlink delete failed because the entry was
// already gone.
func absent(err error) bool {
	return errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// netlinkError wraps err from the operation op (in ip(8) syntax), naming
// the missing capability when that is the cause.
func netlinkError(op string, err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%s: %w", op, ErrNeedNetAdmin)
	}
	return fmt.Errorf("%s: %w", op, err)
}
