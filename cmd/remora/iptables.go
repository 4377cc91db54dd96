package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/remora-mesh/remora/iptables"
)

// iptablesFlags holds the raw `remora iptables` flags, with istio-iptables'
// names: a short name and its long alias share one variable.
type iptablesFlags struct {
	outboundPort, inboundPort, tunnelPort uint
	uids, gids, mode                      string
	inboundPorts, inboundExclude          string
	cidrs, excludeCIDRs                   string
	outboundPorts, outboundExclude        string
	excludeIfaces, kubeVirtIfaces         string
	mark                                  uint
	table                                 int
	ipv6, dryRun, cleanup                 bool
	netns                                 string
	// aliases maps each long flag name to its short alias.
	aliases map[string]string
}

func (f *iptablesFlags) register(fs *flag.FlagSet) {
	f.aliases = map[string]string{"istio-inbound-tproxy-route-table": "r", "ipv6": "dual-stack"}
	uintFlag := func(p *uint, short, long string, def uint, usage string) {
		fs.UintVar(p, short, def, usage)
		fs.UintVar(p, long, def, "same as -"+short)
		f.aliases[long] = short
	}
	strFlag := func(p *string, short, long, def, usage string) {
		fs.StringVar(p, short, def, usage)
		fs.StringVar(p, long, def, "same as -"+short)
		f.aliases[long] = short
	}
	uintFlag(&f.outboundPort, "p", "envoy-port", iptables.DefaultOutboundPort, "outbound capture port")
	uintFlag(&f.inboundPort, "z", "inbound-capture-port", iptables.DefaultInboundPort, "inbound capture port")
	uintFlag(&f.tunnelPort, "e", "inbound-tunnel-port", iptables.DefaultTunnelPort, "HBONE port, never captured inbound")
	strFlag(&f.uids, "u", "proxy-uid", iptables.DefaultProxyUID, "proxy UIDs (comma list), never captured")
	strFlag(&f.gids, "g", "proxy-gid", "", "proxy GIDs (comma list); default: the proxy UIDs")
	strFlag(&f.mode, "m", "istio-inbound-interception-mode", string(iptables.Redirect), "inbound interception: REDIRECT or TPROXY")
	strFlag(&f.inboundPorts, "b", "istio-inbound-ports", "*", `inbound ports to capture: "*", a list, or "" for none`)
	strFlag(&f.inboundExclude, "d", "istio-local-exclude-ports", "15090,15021,15020", `inbound ports not captured (with -b "*")`)
	strFlag(&f.cidrs, "i", "istio-service-cidr", "*", `outbound CIDRs to capture: "*", a list, or "" for none`)
	strFlag(&f.excludeCIDRs, "x", "istio-service-exclude-cidr", "", "outbound CIDRs never captured")
	strFlag(&f.outboundPorts, "q", "istio-outbound-ports", "", "outbound ports always captured")
	strFlag(&f.outboundExclude, "o", "istio-local-outbound-ports-exclude", "", "outbound ports never captured (TCP and UDP)")
	strFlag(&f.excludeIfaces, "c", "istio-exclude-interfaces", "", "interfaces bypassed entirely")
	strFlag(&f.kubeVirtIfaces, "k", "kube-virt-interfaces", "", "interfaces whose inbound traffic is treated as outbound")
	uintFlag(&f.mark, "t", "istio-inbound-tproxy-mark", iptables.DefaultTProxyMark, "TPROXY packet mark")
	fs.IntVar(&f.table, "r", iptables.DefaultTProxyTable, "TPROXY policy-routing table")
	fs.IntVar(&f.table, "istio-inbound-tproxy-route-table", iptables.DefaultTProxyTable, "same as -r")
	fs.BoolVar(&f.ipv6, "dual-stack", false, "also capture IPv6 with ip6tables")
	fs.BoolVar(&f.ipv6, "ipv6", false, "same as --dual-stack")
	fs.BoolVar(&f.dryRun, "dry-run", false, "print the rules in iptables-save form and change nothing")
	fs.BoolVar(&f.dryRun, "n", false, "same as --dry-run")
	fs.BoolVar(&f.cleanup, "cleanup", false, "remove everything the same flags install")
	fs.StringVar(&f.netns, "netns", "", `work in this named network namespace ("ip netns"); default: the current one`)
}

// config turns the flags into an iptables.Config, reporting every bad value.
func (f *iptablesFlags) config() (iptables.Config, error) {
	var errs []error
	port := func(name string, v uint) uint16 {
		if v == 0 || v > 65535 {
			errs = append(errs, fmt.Errorf("-%s %d: want a port 1-65535", name, v))
		}
		return uint16(v)
	}
	ports := func(name, s string) []uint16 {
		p, err := iptables.ParsePortList(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("-%s: %w", name, err))
		}
		return p
	}
	c := iptables.Config{
		OutboundPort:         port("p", f.outboundPort),
		InboundPort:          port("z", f.inboundPort),
		TunnelPort:           port("e", f.tunnelPort),
		ProxyUIDs:            iptables.ParseList(f.uids),
		ProxyGIDs:            iptables.ParseList(f.gids),
		Mode:                 iptables.Mode(strings.ToUpper(strings.TrimSpace(f.mode))),
		InboundExcludePorts:  ports("d", f.inboundExclude),
		OutboundPorts:        ports("q", f.outboundPorts),
		OutboundExcludePorts: ports("o", f.outboundExclude),
		ExcludeInterfaces:    iptables.ParseList(f.excludeIfaces),
		KubeVirtInterfaces:   iptables.ParseList(f.kubeVirtIfaces),
		TProxyMark:           uint32(f.mark),
		TProxyTable:          f.table,
		IPv6:                 f.ipv6,
	}
	var err error
	if c.InboundPorts, err = iptables.ParsePorts(f.inboundPorts); err != nil {
		errs = append(errs, fmt.Errorf("-b: %w", err))
	}
	if c.OutboundCIDRs, err = iptables.ParseCIDRs(f.cidrs); err != nil {
		errs = append(errs, fmt.Errorf("-i: %w", err))
	}
	if c.OutboundExcludeCIDRs, err = iptables.ParseCIDRList(f.excludeCIDRs); err != nil {
		errs = append(errs, fmt.Errorf("-x: %w", err))
	}
	if f.mark == 0 || uint64(f.mark) > math.MaxUint32 {
		errs = append(errs, fmt.Errorf("-t %d: want a mark 1-4294967295", f.mark))
	}
	if len(errs) == 0 {
		errs = append(errs, c.Validate())
	}
	return c, errors.Join(errs...)
}

// parseIptablesFlags parses args, then fills each long flag that neither
// it nor its short alias set on the command line from its REMORA_ env var.
func parseIptablesFlags(fs *flag.FlagSet, args []string, aliases map[string]string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || len(f.Name) == 1 || set[f.Name] || set[aliases[f.Name]] {
			return
		}
		if v, ok := lookup(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// cmdIptables installs (or with --cleanup removes, or with --dry-run
// prints) the traffic interception rules istio-iptables would install.
func cmdIptables(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("iptables", stderr)
	var f iptablesFlags
	f.register(fs)
	if err := parseIptablesFlags(fs, args, f.aliases, os.LookupEnv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "remora iptables: %v\n", err)
		return 2
	}
	c, err := f.config()
	if err != nil {
		fmt.Fprintf(stderr, "remora iptables: %v\n", err)
		return 2
	}
	plan, err := iptables.Build(c)
	if err != nil {
		fmt.Fprintf(stderr, "remora iptables: %v\n", err)
		return 2
	}
	if f.dryRun {
		fmt.Fprint(stdout, plan.Save())
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := &iptables.Applier{Netns: f.netns}
	what := "installed"
	if f.cleanup {
		err, what = a.Cleanup(ctx, plan), "removed"
	} else {
		err = a.Install(ctx, plan)
	}
	if err != nil {
		fmt.Fprintf(stderr, "remora iptables: %v\n", err)
		return 1
	}
	mode := c.Mode
	if mode == "" {
		mode = iptables.Redirect
	}
	fmt.Fprintf(stderr, "remora iptables: %s %s interception rules for %s\n", what, mode, families(plan))
	return 0
}

// families names the plan's address families, e.g. "IPv4 and IPv6".
func families(p iptables.Plan) string {
	var names []string
	for _, rs := range p.Rulesets {
		names = append(names, rs.Family.String())
	}
	return strings.Join(names, " and ")
}
