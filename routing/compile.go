package routing

import (
	"encoding/base64"
	"fmt"
	"net/textproto"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/remora-mesh/remora/config"
)

// clusterName is Envoy's outbound cluster name.
func clusterName(port uint32, subset, host string) string {
	return "outbound|" + strconv.FormatUint(uint64(port), 10) + "|" + subset + "|" + host
}

// destination resolves d, written in a resource of namespace ns, for a
// request on listener port: an explicit port, else the service's only
// port, else the listener port.
func (c *compiler) destination(d *config.Destination, ns string, port uint32) Destination {
	host := strings.ToLower(config.FQDN(d.Host, ns, c.ctx.Domain))
	p := port
	switch svc := c.services[host]; {
	case d.Port != nil && d.Port.Number != 0:
		p = d.Port.Number
	case svc != nil && len(svc.Ports) == 1:
		p = svc.Ports[0]
	}
	return Destination{Cluster: clusterName(p, d.Subset, host), Host: host, Subset: d.Subset, Port: p, Weight: 1}
}

// compileRoute compiles the action of rule i of vs for listener port.
func (c *compiler) compileRoute(vs *config.Object[config.VirtualService], i int, port uint32) (*Route, error) {
	r := &vs.Spec.HTTP[i]
	ns := vs.Meta.Namespace
	rt := &Route{Name: r.Name, VirtualService: ns + "/" + vs.Meta.Name, Rule: i}
	if r.Timeout != nil {
		rt.Timeout = r.Timeout.Duration
	}
	var err error
	if rt.Retry, err = compileRetry(r.Retries); err != nil {
		return nil, err
	}
	if rt.CORS, err = compileCORS(r.CorsPolicy); err != nil {
		return nil, fmt.Errorf("corsPolicy: %w", err)
	}
	rt.Fault = compileFault(r.Fault)
	rt.Mirrors = c.mirrors(r, ns, port)
	var hostRewrite string
	rt.RequestHeaders, rt.ResponseHeaders, hostRewrite = compileHeaders(r.Headers)
	if err := c.compileAction(rt, r, ns, port); err != nil {
		return nil, err
	}
	if r.Rewrite != nil || hostRewrite != "" {
		if rt.Rewrite, err = compileRewrite(r.Rewrite, hostRewrite); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// compileAction sets the route's destinations, redirect or direct response.
func (c *compiler) compileAction(rt *Route, r *config.HTTPRoute, ns string, port uint32) error {
	switch {
	case r.Redirect != nil:
		rt.Redirect = compileRedirect(r.Redirect, port)
		return nil
	case r.DirectResponse != nil:
		dr := &DirectResponse{Status: int(r.DirectResponse.Status)}
		if b := r.DirectResponse.Body; b != nil && b.String != nil {
			dr.Body = []byte(*b.String)
		} else if b != nil && b.Bytes != nil {
			body, err := base64.StdEncoding.DecodeString(*b.Bytes)
			if err != nil {
				return fmt.Errorf("directResponse.body.bytes: %w", err)
			}
			dr.Body = body
		}
		rt.DirectResponse = dr
		return nil
	case r.Delegate != nil:
		return fmt.Errorf("delegate is not supported")
	}
	for j := range r.Route {
		rd := &r.Route[j]
		if len(r.Route) > 1 && rd.Weight <= 0 {
			continue
		}
		d := c.destination(&rd.Destination, ns, port)
		if len(r.Route) > 1 {
			d.Weight = uint32(rd.Weight)
		}
		d.RequestHeaders, d.ResponseHeaders, d.Authority = compileHeaders(rd.Headers)
		rt.Destinations = append(rt.Destinations, d)
		rt.totalWeight += uint64(d.Weight)
	}
	if len(rt.Destinations) == 0 {
		return fmt.Errorf("no destination with a positive weight")
	}
	return nil
}

// compileRedirect compiles rd for listener port.
func compileRedirect(rd *config.HTTPRedirect, port uint32) *Redirect {
	out := &Redirect{Code: int(rd.RedirectCode), Scheme: rd.Scheme, Authority: rd.Authority, Path: rd.URI, Port: rd.Port}
	if out.Code == 0 {
		out.Code = 301
	}
	if out.Port == 0 && rd.DerivePort == "FROM_REQUEST_PORT" {
		out.Port = port
	}
	return out
}

// groupRef turns RE2/Envoy `\1` group references into Go's `${1}`.
var groupRef = regexp.MustCompile(`\\(\d+)`)

// compileRewrite compiles rw; hostRewrite comes from a headers set of
// :authority/host and loses to rewrite.authority.
func compileRewrite(rw *config.HTTPRewrite, hostRewrite string) (*Rewrite, error) {
	out := &Rewrite{Authority: hostRewrite}
	if rw == nil {
		return out, nil
	}
	out.URI = rw.URI
	if rw.Authority != "" {
		out.Authority = rw.Authority
	}
	if rr := rw.URIRegexRewrite; rr != nil && rr.Match != "" {
		re, err := regexp.Compile(rr.Match)
		if err != nil {
			return nil, fmt.Errorf("rewrite.uriRegexRewrite: %w", err)
		}
		out.Regex = re
		out.Replacement = groupRef.ReplaceAllString(strings.ReplaceAll(rr.Rewrite, "$", "$$"), "$${$1}")
	}
	return out, nil
}

// compileHeaders compiles header operations, sorted by name. A set (or
// else add) of :authority or host becomes the returned host rewrite; other
// pseudo-headers and host are never touched.
func compileHeaders(h *config.Headers) (req, resp HeaderOps, authority string) {
	if h == nil {
		return
	}
	if h.Request != nil {
		req = compileOps(h.Request)
		for _, m := range []map[string]string{h.Request.Add, h.Request.Set} {
			for k, v := range m {
				if lk := strings.ToLower(k); lk == ":authority" || lk == "host" {
					authority = v
				}
			}
		}
	}
	if h.Response != nil {
		resp = compileOps(h.Response)
	}
	return req, resp, authority
}

func compileOps(o *config.HeaderOperations) HeaderOps {
	var out HeaderOps
	out.Set = headerList(o.Set)
	for _, kv := range out.Set {
		out.setValues = append(out.setValues, []string{kv.Value})
	}
	out.Add = headerList(o.Add)
	for _, k := range o.Remove {
		if settable(k) {
			out.Remove = append(out.Remove, textproto.CanonicalMIMEHeaderKey(k))
		}
	}
	sort.Strings(out.Remove)
	return out
}

func settable(k string) bool {
	return !strings.HasPrefix(k, ":") && !strings.EqualFold(k, "host")
}

func headerList(m map[string]string) []Header {
	var out []Header
	for k, v := range m {
		if settable(k) {
			out = append(out, Header{Name: textproto.CanonicalMIMEHeaderKey(k), Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// mirrors compiles a rule's mirror and mirrors; a percentage of 0
// disables a mirror, an absent one means 100%.
func (c *compiler) mirrors(r *config.HTTPRoute, ns string, port uint32) []Mirror {
	var out []Mirror
	if r.Mirror != nil {
		pm := uint32(PerMillion)
		switch {
		case r.MirrorPercentage != nil:
			pm = perMillion(r.MirrorPercentage)
		case r.MirrorPercent != nil:
			pm = perMillion(&config.Percent{Value: float64(*r.MirrorPercent)})
		}
		if pm > 0 {
			out = append(out, Mirror{Destination: c.destination(r.Mirror, ns, port), PerMillion: pm})
		}
	}
	for i := range r.Mirrors {
		m := &r.Mirrors[i]
		pm := uint32(PerMillion)
		if m.Percentage != nil {
			pm = perMillion(m.Percentage)
		}
		if pm > 0 {
			out = append(out, Mirror{Destination: c.destination(&m.Destination, ns, port), PerMillion: pm})
		}
	}
	return out
}

// keepMatch applies the build-time filters of m for listener port, as
// Istio's sourceMatchHTTP and port check do: match-level gateways replace
// the source checks; otherwise sourceLabels ⊆ proxy labels and
// sourceNamespace equal to the proxy's.
func (c *compiler) keepMatch(port, mPort uint32, labels map[string]string, gws []string, srcNS, vsNS string) bool {
	if mPort != 0 && port != 0 && mPort != port {
		return false
	}
	if len(gws) > 0 {
		for _, g := range gws {
			if c.gateways[normalizeGateway(g, vsNS)] {
				return true
			}
		}
		return false
	}
	for k, v := range labels {
		if got, ok := c.ctx.Labels[k]; !ok || got != v {
			return false
		}
	}
	return srcNS == "" || srcNS == c.ctx.Namespace
}

// httpBlocks compiles the http rules of vs for listener port into match
// blocks in order, dropping filtered blocks and everything after the
// first catch-all.
func (c *compiler) httpBlocks(vs *config.Object[config.VirtualService], port uint32) []block {
	var out []block
	for i := range vs.Spec.HTTP {
		r := &vs.Spec.HTTP[i]
		rt, err := c.compileRoute(vs, i, port)
		if err != nil {
			c.warnf("%s: http[%d]: %v; rule skipped", vs.Key(), i, err)
			continue
		}
		if len(r.Match) == 0 {
			return append(out, block{route: rt, name: rt.Name})
		}
		for j := range r.Match {
			m := &r.Match[j]
			if !c.keepMatch(port, m.Port, m.SourceLabels, m.Gateways, m.SourceNamespace, vs.Meta.Namespace) {
				continue
			}
			b, err := compileBlock(m)
			if err != nil {
				c.warnf("%s: http[%d].match[%d]: %v; match skipped", vs.Key(), i, j, err)
				continue
			}
			b.route, b.name = rt, joinName(rt.Name, m.Name)
			out = append(out, b)
			if b.catchAll() {
				return out
			}
		}
	}
	return out
}

func joinName(rule, match string) string {
	if rule != "" && match != "" {
		return rule + "." + match
	}
	return rule + match
}
