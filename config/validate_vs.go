package config

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

func (c *checker) virtualService(vs *VirtualService) {
	if len(vs.Hosts) == 0 {
		c.errf("spec.hosts", "at least one host is required")
	}
	mesh := len(vs.Gateways) == 0
	for i, g := range vs.Gateways {
		mesh = mesh || g == "mesh"
		if g == "" {
			c.errf(fmt.Sprintf("spec.gateways[%d]", i), "gateway name must not be empty")
		}
	}
	for i, h := range vs.Hosts {
		p := fmt.Sprintf("spec.hosts[%d]", i)
		switch {
		case h == "*" && mesh:
			c.errf(p, "wildcard host * is not allowed for virtual services bound to the mesh gateway")
		case isIP(h):
		default:
			c.host(p, h, true)
		}
	}
	if len(vs.HTTP) == 0 && len(vs.TCP) == 0 && len(vs.TLS) == 0 {
		c.errf("spec", "http, tcp or tls must be provided in a virtual service")
	}
	for i := range vs.HTTP {
		c.httpRoute(fmt.Sprintf("spec.http[%d]", i), &vs.HTTP[i])
	}
	c.unreachable(vs)
	for i, r := range vs.TLS {
		p := fmt.Sprintf("spec.tls[%d]", i)
		if len(r.Match) == 0 {
			c.errf(p+".match", "TLS route must have at least one match")
		}
		for j, m := range r.Match {
			mp := fmt.Sprintf("%s.match[%d]", p, j)
			if len(m.SNIHosts) == 0 {
				c.errf(mp+".sniHosts", "at least one sniHosts entry is required")
			}
			for k, h := range m.SNIHosts {
				c.host(fmt.Sprintf("%s.sniHosts[%d]", mp, k), h, true)
			}
			c.subnets(mp+".destinationSubnets", m.DestinationSubnets)
			c.optPort(mp+".port", m.Port)
		}
		c.routeDestinations(p+".route", r.Route)
	}
	for i, r := range vs.TCP {
		p := fmt.Sprintf("spec.tcp[%d]", i)
		for j, m := range r.Match {
			mp := fmt.Sprintf("%s.match[%d]", p, j)
			c.subnets(mp+".destinationSubnets", m.DestinationSubnets)
			c.optPort(mp+".port", m.Port)
			if m.SourceSubnet != "" {
				c.subnets(mp+".sourceSubnet", []string{m.SourceSubnet})
			}
		}
		c.routeDestinations(p+".route", r.Route)
	}
}

func (c *checker) subnets(path string, ss []string) {
	for _, s := range ss {
		if err := checkIPOrCIDR(s); err != nil {
			c.errf(path, "%v", err)
		}
	}
}

// unreachable warns about rules after a catch-all: Istio drops them.
func (c *checker) unreachable(vs *VirtualService) {
	for i := range vs.HTTP {
		if !IsCatchAll(&vs.HTTP[i]) || i == len(vs.HTTP)-1 {
			continue
		}
		c.warnf(fmt.Sprintf("spec.http[%d]", i+1), "rule is unreachable: spec.http[%d] before it matches every request", i)
		return
	}
}

// IsCatchAll reports whether an HTTP rule matches every request: no match
// blocks, or one with no condition beyond a "/" prefix. Istio discards the
// rules after it.
func IsCatchAll(r *HTTPRoute) bool {
	if len(r.Match) == 0 {
		return true
	}
	for i := range r.Match {
		if catchAllMatch(&r.Match[i]) {
			return true
		}
	}
	return false
}

func catchAllMatch(m *HTTPMatchRequest) bool {
	if u := m.URI; u != nil && (u.Prefix == nil || *u.Prefix != "/") {
		return false
	}
	return m.Scheme == nil && m.Method == nil && m.Authority == nil && len(m.Headers) == 0 &&
		len(m.QueryParams) == 0 && len(m.WithoutHeaders) == 0 && m.Port == 0 &&
		len(m.SourceLabels) == 0 && len(m.Gateways) == 0 && m.SourceNamespace == ""
}

func (c *checker) httpRoute(p string, r *HTTPRoute) {
	actions := 0
	for _, set := range []bool{len(r.Route) > 0, r.Redirect != nil, r.DirectResponse != nil, r.Delegate != nil} {
		if set {
			actions++
		}
	}
	switch {
	case actions == 0:
		c.errf(p, "HTTP route must have one of route, redirect, directResponse or delegate")
	case actions > 1:
		c.errf(p, "HTTP route may have only one of route, redirect, directResponse or delegate")
	}
	for i := range r.Match {
		c.httpMatch(fmt.Sprintf("%s.match[%d]", p, i), &r.Match[i])
	}
	c.httpDestinations(p+".route", r.Route)
	c.redirect(p+".redirect", r.Redirect)
	c.directResponse(p+".directResponse", r.DirectResponse)
	c.rewrite(p+".rewrite", r.Rewrite)
	c.duration(p+".timeout", r.Timeout)
	c.retries(p+".retries", r.Retries)
	c.fault(p+".fault", r.Fault)
	c.mirrors(p, r)
	c.cors(p+".corsPolicy", r.CorsPolicy)
	c.headers(p+".headers", r.Headers)
}

func (c *checker) httpMatch(p string, m *HTTPMatchRequest) {
	c.stringMatch(p+".uri", m.URI)
	c.stringMatch(p+".scheme", m.Scheme)
	c.stringMatch(p+".method", m.Method)
	c.stringMatch(p+".authority", m.Authority)
	for _, hs := range []struct {
		field string
		m     map[string]StringMatch
	}{{"headers", m.Headers}, {"queryParams", m.QueryParams}, {"withoutHeaders", m.WithoutHeaders}} {
		for k, v := range hs.m {
			kp := p + "." + hs.field + "." + k
			if k == "" {
				c.errf(p+"."+hs.field, "names must not be empty")
			}
			c.stringMatch(kp, &v)
		}
	}
	c.optPort(p+".port", m.Port)
	c.labels(p+".sourceLabels", m.SourceLabels)
}

func (c *checker) destination(p string, d *Destination) {
	switch {
	case d.Host == "":
		c.errf(p+".host", "destination host is required")
	case d.Host == "*":
		c.errf(p+".host", "destination host must not be a wildcard")
	case !isIP(d.Host):
		c.host(p+".host", d.Host, true)
	}
	if d.Subset != "" && !dns1123Label(d.Subset) {
		c.errf(p+".subset", "subset %q is not a valid name (DNS-1123 label)", d.Subset)
	}
	if d.Port != nil {
		c.port(p+".port.number", d.Port.Number)
	}
}

func (c *checker) httpDestinations(p string, ds []HTTPRouteDestination) {
	weights := make([]int32, len(ds))
	for i := range ds {
		dp := fmt.Sprintf("%s[%d]", p, i)
		c.destination(dp+".destination", &ds[i].Destination)
		c.headers(dp+".headers", ds[i].Headers)
		weights[i] = ds[i].Weight
	}
	c.weights(p, weights)
}

func (c *checker) routeDestinations(p string, ds []RouteDestination) {
	if len(ds) == 0 {
		c.errf(p, "at least one route destination is required")
	}
	weights := make([]int32, len(ds))
	for i := range ds {
		c.destination(fmt.Sprintf("%s[%d].destination", p, i), &ds[i].Destination)
		weights[i] = ds[i].Weight
	}
	c.weights(p, weights)
}

// weights applies Istio's rule since 1.15: each weight >= 0 and, with more
// than one destination, a positive total.
func (c *checker) weights(p string, ws []int32) {
	var total int64
	for i, w := range ws {
		if w < 0 {
			c.errf(fmt.Sprintf("%s[%d].weight", p, i), "weight %d must not be negative", w)
		}
		total += int64(w)
	}
	if len(ws) > 1 && total <= 0 {
		c.errf(p, "total destination weight must be greater than 0, got %d", total)
	}
	if total > 1<<31-1 {
		c.errf(p, "total destination weight %d overflows", total)
	}
}

func (c *checker) redirect(p string, r *HTTPRedirect) {
	if r == nil {
		return
	}
	if r.URI == "" && r.Authority == "" && r.Port == 0 && r.DerivePort == "" && r.Scheme == "" {
		c.errf(p, "redirect must set at least one of uri, authority, port, derivePort or scheme")
	}
	if r.RedirectCode != 0 && (r.RedirectCode < 300 || r.RedirectCode > 399) {
		c.errf(p+".redirectCode", "%d is not a valid redirect code, must be 3xx", r.RedirectCode)
	}
	if r.Port != 0 && r.DerivePort != "" {
		c.errf(p, "only one of port and derivePort may be set")
	}
	c.optPort(p+".port", r.Port)
	if r.Scheme != "" && r.Scheme != "http" && r.Scheme != "https" {
		c.errf(p+".scheme", "scheme %q must be http or https", r.Scheme)
	}
}

func (c *checker) directResponse(p string, d *HTTPDirectResponse) {
	if d == nil {
		return
	}
	if d.Status < 200 || d.Status > 599 {
		c.errf(p+".status", "status %d must be within 200-599", d.Status)
	}
	if b := d.Body; b != nil {
		if b.String != nil && b.Bytes != nil {
			c.errf(p+".body", "only one of string or bytes may be set")
		}
		if b.Bytes != nil {
			c.base64(p+".body.bytes", *b.Bytes)
		}
		if b.String != nil && len(*b.String) > 1<<20 || b.Bytes != nil && len(*b.Bytes) > 4<<20/3 {
			c.errf(p+".body", "body must be at most 1 MiB")
		}
	}
}

func (c *checker) rewrite(p string, r *HTTPRewrite) {
	if r == nil {
		return
	}
	if r.URI != "" && r.URIRegexRewrite != nil {
		c.errf(p, "only one of uri and uriRegexRewrite may be set")
	}
	if rr := r.URIRegexRewrite; rr != nil {
		if rr.Match == "" || rr.Rewrite == "" {
			c.errf(p+".uriRegexRewrite", "both match and rewrite are required")
		}
		c.regex(p+".uriRegexRewrite.match", rr.Match)
	}
	if r.URI == "" && r.Authority == "" && r.URIRegexRewrite == nil {
		c.errf(p, "rewrite must set uri, uriRegexRewrite or authority")
	}
}

// retryOnTokens are the retry conditions Envoy accepts.
var retryOnTokens = map[string]bool{
	"5xx": true, "gateway-error": true, "reset": true, "reset-before-request": true, "connect-failure": true,
	"envoy-ratelimited": true, "retriable-4xx": true, "refused-stream": true, "retriable-status-codes": true,
	"retriable-headers": true, "http3-post-connect-failure": true,
	"cancelled": true, "deadline-exceeded": true, "internal": true, "resource-exhausted": true, "unavailable": true,
}

func (c *checker) retries(p string, r *HTTPRetry) {
	if r == nil {
		return
	}
	if r.Attempts < 0 {
		c.errf(p+".attempts", "attempts must not be negative")
	}
	if r.Attempts == 0 && (r.PerTryTimeout != nil || r.RetryOn != "" || r.RetryRemoteLocalities != nil) {
		c.errf(p, "attempts 0 (no retries) cannot be combined with perTryTimeout, retryOn or retryRemoteLocalities")
	}
	c.duration(p+".perTryTimeout", r.PerTryTimeout)
	c.duration(p+".backoff", r.Backoff)
	if r.RetryOn == "" {
		return
	}
	for _, tok := range strings.Split(r.RetryOn, ",") {
		if retryOnTokens[tok] {
			continue
		}
		if code, err := strconv.Atoi(tok); err == nil && http.StatusText(code) != "" {
			continue
		}
		c.errf(p+".retryOn", "%q is not a valid retry condition (comma list without spaces of Envoy retry_on values or status codes)", tok)
	}
}

// GRPCCodes maps the gRPC status names Istio accepts in fault.abort to
// their numbers.
var GRPCCodes = map[string]int{
	"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
	"ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
	"ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
	"DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

func (c *checker) fault(p string, f *HTTPFaultInjection) {
	if f == nil {
		return
	}
	if f.Delay == nil && f.Abort == nil {
		c.errf(p, "fault must have a delay or an abort")
	}
	if d := f.Delay; d != nil {
		switch {
		case d.ExponentialDelay != nil:
			c.errf(p+".delay.exponentialDelay", "exponentialDelay is not supported")
		case d.FixedDelay == nil:
			c.errf(p+".delay", "fixedDelay is required")
		}
		c.duration(p+".delay.fixedDelay", d.FixedDelay)
		c.percent(p+".delay.percentage", d.Percentage)
		if d.Percent != nil && (*d.Percent < 0 || *d.Percent > 100) {
			c.errf(p+".delay.percent", "percent %d must be within 0-100", *d.Percent)
		}
	}
	if a := f.Abort; a != nil {
		n := 0
		if a.HTTPStatus != nil {
			n++
			if *a.HTTPStatus < 200 || *a.HTTPStatus > 599 {
				c.errf(p+".abort.httpStatus", "status %d must be within 200-599", *a.HTTPStatus)
			}
		}
		if a.GRPCStatus != "" {
			n++
			if _, ok := GRPCCodes[a.GRPCStatus]; !ok {
				c.errf(p+".abort.grpcStatus", "%q is not a gRPC status name", a.GRPCStatus)
			}
		}
		if a.HTTP2Error != "" {
			c.errf(p+".abort.http2Error", "http2Error is not supported")
		}
		if n != 1 {
			c.errf(p+".abort", "abort must set exactly one of httpStatus or grpcStatus")
		}
		c.percent(p+".abort.percentage", a.Percentage)
	}
}

func (c *checker) mirrors(p string, r *HTTPRoute) {
	if r.Mirror != nil {
		c.destination(p+".mirror", r.Mirror)
		if len(r.Mirrors) > 0 {
			c.errf(p+".mirrors", "only one of mirror and mirrors may be set")
		}
	}
	c.percent(p+".mirrorPercentage", r.MirrorPercentage)
	if r.MirrorPercent != nil && *r.MirrorPercent > 100 {
		c.errf(p+".mirrorPercent", "percent %d must be within 0-100", *r.MirrorPercent)
	}
	for i := range r.Mirrors {
		mp := fmt.Sprintf("%s.mirrors[%d]", p, i)
		c.destination(mp+".destination", &r.Mirrors[i].Destination)
		c.percent(mp+".percentage", r.Mirrors[i].Percentage)
	}
}

func (c *checker) cors(p string, cp *CorsPolicy) {
	if cp == nil {
		return
	}
	for i := range cp.AllowOrigins {
		c.stringMatch(fmt.Sprintf("%s.allowOrigins[%d]", p, i), &cp.AllowOrigins[i])
	}
	for i, m := range cp.AllowMethods {
		if !validToken(m) {
			c.errf(fmt.Sprintf("%s.allowMethods[%d]", p, i), "%q is not a valid HTTP method", m)
		}
	}
	c.duration(p+".maxAge", cp.MaxAge)
}

func (c *checker) headers(p string, h *Headers) {
	if h == nil {
		return
	}
	for _, ops := range []struct {
		path string
		op   *HeaderOperations
	}{{p + ".request", h.Request}, {p + ".response", h.Response}} {
		if ops.op == nil {
			continue
		}
		for _, kv := range []struct {
			field string
			m     map[string]string
		}{{"set", ops.op.Set}, {"add", ops.op.Add}} {
			for k, v := range kv.m {
				c.headerName(ops.path+"."+kv.field+"."+k, k, true)
				if strings.ContainsAny(v, "\r\n\x00") {
					c.errf(ops.path+"."+kv.field+"."+k, "header value must not contain CR, LF or NUL")
				}
			}
		}
		for i, k := range ops.op.Remove {
			c.headerName(fmt.Sprintf("%s.remove[%d]", ops.path, i), k, false)
		}
	}
}

func (c *checker) headerName(p, name string, authorityOK bool) {
	lower := strings.ToLower(name)
	switch {
	case authorityOK && (lower == ":authority" || lower == "host"):
	case strings.HasPrefix(name, ":") || lower == "host":
		c.errf(p, "pseudo-header or host %q cannot be changed here", name)
	case !validToken(name):
		c.errf(p, "%q is not a valid header name", name)
	}
}

// validToken reports whether s is an RFC 7230 token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}
