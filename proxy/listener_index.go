package proxy

import (
	"net/netip"
	"strings"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
)

// serviceIndex answers "which service is this destination" for one
// snapshot; it is built once per snapshot and then only read.
type serviceIndex struct {
	snap *snapshot.Snapshot
	// vips are exact VIPs; cidrs the prefix addresses.
	vips  map[netip.Addr][]*snapshot.Service
	cidrs []cidrService
	// wildcard holds, per port, the first service without addresses
	// that declares it with a TCP-class or undeclared protocol: Istio's
	// 0.0.0.0_<port> listener, which catches every IP on that port.
	wildcard map[uint32]*snapshot.Service
	// wildcardAuto is the same for undeclared protocols, consulted
	// after the HTTP ports.
	wildcardAuto map[uint32]*snapshot.Service
	// httpPorts are ports some service declares HTTP-class: Istio's
	// shared 0.0.0.0_<port> HTTP listener, routed by Host.
	httpPorts map[uint32]bool
	// endpoints maps an endpoint ip:port to its service and port, for
	// inbound protocol selection.
	endpoints map[netip.AddrPort]endpointService
}

type cidrService struct {
	prefix netip.Prefix
	svc    *snapshot.Service
}

type endpointService struct {
	svc  *snapshot.Service
	port snapshot.Port
}

// match is the outcome of an outbound lookup.
type match struct {
	// svc is the service owning the destination (nil for none).
	svc   *snapshot.Service
	proto config.Protocol
	// httpPort is set when no service owns the address but the port is
	// an HTTP port of some service: the HTTP chain routes by Host.
	httpPort bool
}

// services returns the index for snap, building it on first use.
func (l *Listener) services(snap *snapshot.Snapshot) *serviceIndex {
	if ix := l.index.Load(); ix != nil && ix.snap == snap {
		return ix
	}
	ix := newServiceIndex(snap)
	l.index.Store(ix)
	return ix
}

func newServiceIndex(snap *snapshot.Snapshot) *serviceIndex {
	ix := &serviceIndex{snap: snap, vips: map[netip.Addr][]*snapshot.Service{},
		wildcard: map[uint32]*snapshot.Service{}, wildcardAuto: map[uint32]*snapshot.Service{}, httpPorts: map[uint32]bool{}, endpoints: map[netip.AddrPort]endpointService{}}
	if snap.Registry == nil {
		return ix
	}
	for _, svc := range snap.Registry.Services() {
		ix.addAddresses(svc)
		for _, p := range svc.Ports {
			if p.Protocol.IsHTTP() {
				ix.httpPorts[p.Number] = true
			} else if len(svc.Addresses) == 0 && p.Protocol != config.UDP {
				w := ix.wildcard
				if p.Protocol == config.Unknown {
					w = ix.wildcardAuto
				}
				if w[p.Number] == nil {
					w[p.Number] = svc
				}
			}
			for i := range svc.Endpoints {
				ep := &svc.Endpoints[i]
				if ip, err := netip.ParseAddr(ep.Address); err == nil {
					k := netip.AddrPortFrom(ip.Unmap(), uint16(ep.PortFor(p)))
					if _, dup := ix.endpoints[k]; !dup {
						ix.endpoints[k] = endpointService{svc, p}
					}
				}
			}
		}
	}
	return ix
}

func (ix *serviceIndex) addAddresses(svc *snapshot.Service) {
	for _, a := range svc.Addresses {
		if strings.Contains(a, "/") {
			if p, err := netip.ParsePrefix(a); err == nil {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
				if p.IsSingleIP() {
					ix.vips[p.Addr()] = append(ix.vips[p.Addr()], svc)
				} else {
					ix.cidrs = append(ix.cidrs, cidrService{p, svc})
				}
			}
			continue
		}
		if ip, err := netip.ParseAddr(a); err == nil {
			ix.vips[ip.Unmap()] = append(ix.vips[ip.Unmap()], svc)
		}
	}
}

// outbound finds the service for an original destination, in Istio's
// listener order: the VIP (or the longest CIDR) with that port; a
// service without addresses that declares the port TCP-class (it
// hijacks the port for every IP); an HTTP port of any service (Host
// decides later); a service without addresses with the port undeclared.
func (ix *serviceIndex) outbound(dst netip.AddrPort) match {
	port := uint32(dst.Port())
	for _, svc := range ix.vips[dst.Addr()] {
		if p, ok := svc.Port(port); ok {
			return match{svc: svc, proto: p.Protocol}
		}
	}
	var best *snapshot.Service
	var bestProto config.Protocol
	bits := -1
	for _, c := range ix.cidrs {
		if c.prefix.Bits() > bits && c.prefix.Contains(dst.Addr()) {
			if p, ok := c.svc.Port(port); ok {
				best, bestProto, bits = c.svc, p.Protocol, c.prefix.Bits()
			}
		}
	}
	if best != nil {
		return match{svc: best, proto: bestProto}
	}
	if svc := ix.wildcard[port]; svc != nil {
		p, _ := svc.Port(port)
		return match{svc: svc, proto: p.Protocol}
	}
	if ix.httpPorts[port] {
		return match{httpPort: true, proto: config.HTTP}
	}
	if svc := ix.wildcardAuto[port]; svc != nil {
		return match{svc: svc, proto: config.Unknown}
	}
	return match{}
}

// inbound finds the service and protocol of a destination on this
// workload by endpoint address and port; an unknown one is sniffed.
func (ix *serviceIndex) inbound(dst netip.AddrPort) (*snapshot.Service, config.Protocol) {
	if e, ok := ix.endpoints[dst]; ok {
		return e.svc, e.port.Protocol
	}
	return nil, config.Unknown
}
