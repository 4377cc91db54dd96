package upstream

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/snapshot"
)

// NewResolver returns a resolver that sends every query to server
// ("HOST:PORT", the --dns-server flag) with Go's own resolver. An empty
// server means net.DefaultResolver.
func NewResolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

// dnsName is one endpoint host name of a DNS cluster, with the port and
// weight its addresses get.
type dnsName struct {
	host   string
	port   string
	weight uint32
}

// startDNSLocked (re)starts background resolution of sc's endpoint names
// when they changed; the current endpoints stay until the first answer.
// Caller must hold c.epMu.
func (c *Cluster) startDNSLocked(sc *snapshot.Cluster, s *settings) {
	names := make([]dnsName, 0, len(sc.Endpoints))
	var key strings.Builder
	for i := range sc.Endpoints {
		e := &sc.Endpoints[i]
		n := dnsName{host: e.Address, port: strconv.FormatUint(uint64(e.PortFor(sc.Port)), 10), weight: e.Weight}
		names = append(names, n)
		fmt.Fprintf(&key, "%s:%s/%d,", n.host, n.port, n.weight)
	}
	fmt.Fprintf(&key, "logical=%v", s.logicalDNS)
	if c.dnsStop != nil && c.dnsKey == key.String() {
		return
	}
	c.stopDNSLocked()
	ctx, cancel := context.WithCancel(context.Background())
	c.dnsStop, c.dnsKey = cancel, key.String()
	go c.resolveLoop(ctx, names, s.logicalDNS)
}

// stopDNSLocked stops background resolution. Caller must hold c.epMu.
func (c *Cluster) stopDNSLocked() {
	if c.dnsStop != nil {
		c.dnsStop()
		c.dnsStop, c.dnsKey = nil, ""
	}
}

// resolveLoop resolves names now and every DNSRefresh until ctx ends,
// replacing the endpoint set after each round. A name that fails keeps
// its previous addresses.
func (c *Cluster) resolveLoop(ctx context.Context, names []dnsName, logical bool) {
	last := map[string][]target{}
	t := time.NewTicker(c.m.opts.DNSRefresh)
	defer t.Stop()
	for {
		var ts []target
		for _, n := range names {
			got, err := c.resolve(ctx, n, logical)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				c.m.log.Warn("dns resolution", zap.String("cluster", c.name), zap.String("host", n.host), zap.Error(err))
				got = last[n.host+":"+n.port]
			}
			last[n.host+":"+n.port] = got
			ts = append(ts, got...)
		}
		c.epMu.Lock()
		if ctx.Err() == nil {
			c.setEndpointsLocked(ts)
		}
		c.epMu.Unlock()
		c.markReady()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// resolve looks n up: every address (STRICT_DNS), or the first
// (DNS_ROUND_ROBIN, Envoy's LOGICAL_DNS). An IP literal is its own answer.
func (c *Cluster) resolve(ctx context.Context, n dnsName, logical bool) ([]target, error) {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(n.host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ips, err = c.m.opts.Resolver.LookupNetIP(rctx, "ip", n.host)
		if err != nil {
			return nil, err
		}
	}
	if logical && len(ips) > 1 {
		ips = ips[:1]
	}
	out := make([]target, len(ips))
	for i, ip := range ips {
		out[i] = target{addr: net.JoinHostPort(ip.Unmap().String(), n.port), weight: n.weight}
	}
	return out, nil
}
