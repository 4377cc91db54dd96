package config

import (
	"fmt"
	"strings"
)

func (c *checker) destinationRule(dr *DestinationRule) {
	if dr.Host == "" {
		c.errf("spec.host", "host is required")
	} else if !isIP(dr.Host) {
		c.host("spec.host", dr.Host, true)
	}
	c.trafficPolicy("spec.trafficPolicy", dr.TrafficPolicy)
	names := map[string]bool{}
	for i, s := range dr.Subsets {
		p := fmt.Sprintf("spec.subsets[%d]", i)
		switch {
		case s.Name == "":
			c.errf(p+".name", "subset name is required")
		case !dns1123Label(s.Name):
			c.errf(p+".name", "subset name %q is not a valid DNS-1123 label", s.Name)
		case names[s.Name]:
			c.errf(p+".name", "duplicate subset name %q", s.Name)
		}
		names[s.Name] = true
		c.labels(p+".labels", s.Labels)
		c.trafficPolicy(p+".trafficPolicy", s.TrafficPolicy)
	}
}

func (c *checker) trafficPolicy(p string, tp *TrafficPolicy) {
	if tp == nil {
		return
	}
	c.loadBalancer(p+".loadBalancer", tp.LoadBalancer)
	c.connectionPool(p+".connectionPool", tp.ConnectionPool)
	c.outlier(p+".outlierDetection", tp.OutlierDetection)
	c.clientTLS(p+".tls", tp.TLS)
	ports := map[uint32]bool{}
	for i, pl := range tp.PortLevelSettings {
		pp := fmt.Sprintf("%s.portLevelSettings[%d]", p, i)
		if pl.Port == nil || pl.Port.Number == 0 {
			c.errf(pp+".port", "port level settings need a port number")
		} else {
			c.port(pp+".port.number", pl.Port.Number)
			if ports[pl.Port.Number] {
				c.errf(pp+".port", "duplicate port level settings for port %d", pl.Port.Number)
			}
			ports[pl.Port.Number] = true
		}
		c.loadBalancer(pp+".loadBalancer", pl.LoadBalancer)
		c.connectionPool(pp+".connectionPool", pl.ConnectionPool)
		c.outlier(pp+".outlierDetection", pl.OutlierDetection)
		c.clientTLS(pp+".tls", pl.TLS)
	}
}

func (c *checker) loadBalancer(p string, lb *LoadBalancerSettings) {
	if lb == nil {
		return
	}
	if lb.Simple != "" && lb.ConsistentHash != nil {
		c.errf(p, "only one of simple and consistentHash may be set")
	}
	ch := lb.ConsistentHash
	if ch == nil {
		return
	}
	keys := 0
	for _, set := range []bool{ch.HTTPHeaderName != "", ch.HTTPCookie != nil, ch.UseSourceIP, ch.HTTPQueryParameterName != ""} {
		if set {
			keys++
		}
	}
	if keys != 1 {
		c.errf(p+".consistentHash", "exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName must be set")
	}
	if ch.HTTPCookie != nil {
		if ch.HTTPCookie.Name == "" {
			c.errf(p+".consistentHash.httpCookie.name", "cookie name is required")
		}
		if ch.HTTPCookie.TTL != nil && ch.HTTPCookie.TTL.Duration < 0 {
			c.errf(p+".consistentHash.httpCookie.ttl", "ttl must not be negative")
		}
	}
	if ch.RingHash != nil && ch.Maglev != nil {
		c.errf(p+".consistentHash", "only one of ringHash and maglev may be set")
	}
	if ch.MinimumRingSize != 0 && (ch.RingHash != nil || ch.Maglev != nil) {
		c.errf(p+".consistentHash.minimumRingSize", "minimumRingSize cannot be combined with ringHash or maglev")
	}
	if ch.Maglev != nil && ch.Maglev.TableSize != 0 && !prime(ch.Maglev.TableSize) {
		c.errf(p+".consistentHash.maglev.tableSize", "table size %d must be a prime number", ch.Maglev.TableSize)
	}
}

func prime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func (c *checker) connectionPool(p string, cp *ConnectionPoolSettings) {
	if cp == nil {
		return
	}
	if t := cp.TCP; t != nil {
		if t.MaxConnections < 0 {
			c.errf(p+".tcp.maxConnections", "must not be negative")
		}
		c.duration(p+".tcp.connectTimeout", t.ConnectTimeout)
		c.duration(p+".tcp.maxConnectionDuration", t.MaxConnectionDuration)
		if k := t.TCPKeepalive; k != nil {
			c.duration(p+".tcp.tcpKeepalive.time", k.Time)
			c.duration(p+".tcp.tcpKeepalive.interval", k.Interval)
		}
	}
	if h := cp.HTTP; h != nil {
		for _, f := range []struct {
			name string
			v    int32
		}{{"http1MaxPendingRequests", h.HTTP1MaxPendingRequests}, {"http2MaxRequests", h.HTTP2MaxRequests},
			{"maxRequestsPerConnection", h.MaxRequestsPerConnection}, {"maxRetries", h.MaxRetries},
			{"maxConcurrentStreams", h.MaxConcurrentStreams}} {
			if f.v < 0 {
				c.errf(p+".http."+f.name, "must not be negative")
			}
		}
		c.duration(p+".http.idleTimeout", h.IdleTimeout)
		if h.UseClientProtocol && h.H2UpgradePolicy == "UPGRADE" {
			c.errf(p+".http", "useClientProtocol cannot be combined with h2UpgradePolicy UPGRADE")
		}
	}
}

func (c *checker) outlier(p string, od *OutlierDetection) {
	if od == nil {
		return
	}
	if od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
		c.errf(p+".maxEjectionPercent", "must be within 0-100")
	}
	if od.MinHealthPercent < 0 || od.MinHealthPercent > 100 {
		c.errf(p+".minHealthPercent", "must be within 0-100")
	}
	if od.ConsecutiveErrors < 0 {
		c.errf(p+".consecutiveErrors", "must not be negative")
	}
	c.duration(p+".interval", od.Interval)
	c.duration(p+".baseEjectionTime", od.BaseEjectionTime)
	if od.ConsecutiveLocalOriginFailures != nil && !od.SplitExternalLocalOriginErrors {
		c.errf(p+".consecutiveLocalOriginFailures", "requires splitExternalLocalOriginErrors: true")
	}
}

func (c *checker) clientTLS(p string, t *ClientTLSSettings) {
	if t == nil {
		return
	}
	switch t.Mode {
	case "MUTUAL":
		if t.CredentialName == "" && (t.ClientCertificate == "" || t.PrivateKey == "") {
			c.errf(p, "MUTUAL requires clientCertificate and privateKey (or credentialName)")
		}
	case "ISTIO_MUTUAL":
		if t.ClientCertificate != "" || t.PrivateKey != "" || t.CACertificates != "" || t.CredentialName != "" {
			c.errf(p, "ISTIO_MUTUAL must not set certificate files or credentialName")
		}
	}
}

// gatewayProtocols are the protocols a Gateway server may use.
var gatewayProtocols = map[Protocol]bool{HTTP: true, HTTPS: true, GRPC: true, GRPCWeb: true, HTTP2: true,
	Mongo: true, TCP: true, TLS: true, Redis: true, MySQL: true}

func (c *checker) gateway(g *Gateway) {
	if len(g.Servers) == 0 {
		c.errf("spec.servers", "at least one server is required")
	}
	names := map[string]bool{}
	for i := range g.Servers {
		s := &g.Servers[i]
		p := fmt.Sprintf("spec.servers[%d]", i)
		if s.Port == nil {
			c.errf(p+".port", "port is required")
		} else {
			c.port(p+".port.number", s.Port.Number)
			proto := ParseProtocol(s.Port.Protocol)
			if !gatewayProtocols[proto] {
				c.errf(p+".port.protocol", "invalid protocol %q (want HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS or MONGO)", s.Port.Protocol)
			}
			if s.Port.Name != "" {
				if names[s.Port.Name] {
					c.errf(p+".port.name", "port names must be unique: %q is used twice", s.Port.Name)
				}
				names[s.Port.Name] = true
			}
			if (proto == HTTPS || proto == TLS) && (s.TLS == nil || s.TLS.Mode == "" && !s.TLS.HTTPSRedirect) {
				c.errf(p+".tls", "server must have TLS settings for HTTPS/TLS protocols")
			}
		}
		if len(s.Hosts) == 0 {
			c.errf(p+".hosts", "at least one host is required")
		}
		for j, h := range s.Hosts {
			c.namespacedHost(fmt.Sprintf("%s.hosts[%d]", p, j), h)
		}
		c.serverTLS(p+".tls", s.TLS)
	}
}

// namespacedHost checks a "[namespace/]dnsName" host.
func (c *checker) namespacedHost(p, h string) {
	ns, name := SplitGatewayHost(h)
	if strings.Count(h, "/") > 1 || ns == "" {
		c.errf(p, "host %q must be [namespace/]dnsName", h)
		return
	}
	if ns != "*" && ns != "." && ns != "~" && !dns1123Label(ns) {
		c.errf(p, "namespace %q of host %q is not valid", ns, h)
	}
	if name == "~" {
		return
	}
	c.host(p, name, true)
}

func (c *checker) serverTLS(p string, t *ServerTLSSettings) {
	if t == nil {
		return
	}
	files := t.ServerCertificate != "" || t.PrivateKey != ""
	cred := t.CredentialName != "" || len(t.CredentialNames) > 0
	switch t.Mode {
	case "SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL":
		if !cred && (t.ServerCertificate == "" || t.PrivateKey == "") {
			c.errf(p, "%s requires serverCertificate and privateKey (or credentialName)", t.Mode)
		}
		if t.Mode != "SIMPLE" && !cred && t.CACertificates == "" {
			c.errf(p+".caCertificates", "%s requires caCertificates", t.Mode)
		}
		if files && cred {
			c.errf(p, "only one of credentialName and certificate files may be set")
		}
	case "ISTIO_MUTUAL":
		if files || cred || t.CACertificates != "" {
			c.errf(p, "ISTIO_MUTUAL must not set certificate files or credentialName")
		}
	}
	if t.MinProtocolVersion != "" && t.MaxProtocolVersion != "" && t.MinProtocolVersion != "TLS_AUTO" &&
		t.MaxProtocolVersion != "TLS_AUTO" && t.MinProtocolVersion > t.MaxProtocolVersion {
		c.errf(p+".minProtocolVersion", "minProtocolVersion %s is above maxProtocolVersion %s", t.MinProtocolVersion, t.MaxProtocolVersion)
	}
}

func (c *checker) serviceEntry(se *ServiceEntry) {
	if len(se.Hosts) == 0 {
		c.errf("spec.hosts", "at least one host is required")
	}
	for i, h := range se.Hosts {
		p := fmt.Sprintf("spec.hosts[%d]", i)
		if h == "*" {
			c.errf(p, "host * is not allowed in a ServiceEntry")
			continue
		}
		c.host(p, h, true)
		if strings.HasPrefix(h, "*") && (se.Resolution == "DNS" || se.Resolution == "DNS_ROUND_ROBIN") && len(se.Endpoints) == 0 {
			c.errf(p, "wildcard host %q needs endpoints with resolution %s", h, se.Resolution)
		}
	}
	for i, a := range se.Addresses {
		if err := checkIPOrCIDR(a); err != nil {
			c.errf(fmt.Sprintf("spec.addresses[%d]", i), "%v", err)
		}
	}
	if len(se.Ports) == 0 {
		c.errf("spec.ports", "at least one port is required")
	}
	names := map[string]bool{}
	for i, sp := range se.Ports {
		p := fmt.Sprintf("spec.ports[%d]", i)
		c.port(p+".number", sp.Number)
		c.optPort(p+".targetPort", sp.TargetPort)
		if sp.Protocol != "" && ParseProtocol(sp.Protocol) == Unknown {
			c.errf(p+".protocol", "unknown protocol %q", sp.Protocol)
		}
		if sp.Name != "" {
			if names[sp.Name] {
				c.errf(p+".name", "port names must be unique: %q is used twice", sp.Name)
			}
			names[sp.Name] = true
		}
	}
	if len(se.Endpoints) > 0 && se.WorkloadSelector != nil {
		c.errf("spec", "only one of endpoints and workloadSelector may be set")
	}
	if se.Resolution == "STATIC" && len(se.Endpoints) == 0 && se.WorkloadSelector == nil {
		c.warnf("spec.endpoints", "resolution STATIC with no endpoints: every request gets 503 UH")
	}
	dnsOK := se.Resolution == "DNS" || se.Resolution == "DNS_ROUND_ROBIN"
	for i := range se.Endpoints {
		p := fmt.Sprintf("spec.endpoints[%d]", i)
		c.workloadEntry(p, &se.Endpoints[i], dnsOK)
		for name := range se.Endpoints[i].Ports {
			if !names[name] {
				c.warnf(p+".ports."+name, "no port named %q in this ServiceEntry", name)
			}
		}
	}
}

func (c *checker) workloadEntry(p string, we *WorkloadEntry, dnsOK bool) {
	switch a := we.Address; {
	case a == "" && we.Network == "":
		c.errf(p+".address", "address is required")
	case a == "", isIP(a), strings.HasPrefix(a, "unix://"):
	case dnsOK || p == "spec":
		c.host(p+".address", a, false)
	default:
		c.errf(p+".address", "endpoint address %q must be an IP address (DNS names need resolution DNS)", a)
	}
	for name, port := range we.Ports {
		c.port(p+".ports."+name, port)
	}
	c.labels(p+".labels", we.Labels)
}

func (c *checker) sidecar(sc *Sidecar) {
	for i, e := range sc.Egress {
		p := fmt.Sprintf("spec.egress[%d]", i)
		if len(e.Hosts) == 0 {
			c.errf(p+".hosts", "at least one host is required")
		}
		for j, h := range e.Hosts {
			hp := fmt.Sprintf("%s.hosts[%d]", p, j)
			if !strings.Contains(h, "/") {
				c.errf(hp, "host %q must be namespace/dnsName", h)
				continue
			}
			c.namespacedHost(hp, h)
		}
		if e.Port != nil {
			c.port(p+".port.number", e.Port.Number)
		}
	}
	for i, in := range sc.Ingress {
		p := fmt.Sprintf("spec.ingress[%d]", i)
		if in.Port == nil {
			c.errf(p+".port", "port is required")
		} else {
			c.port(p+".port.number", in.Port.Number)
		}
	}
}
