package routing

import "net/http"

// Outcome is what Match found.
type Outcome uint8

const (
	// UnknownHost means no virtual host serves the authority on this
	// port: the caller passes the request through (ALLOW_ANY) or answers
	// 502 with an empty body (REGISTRY_ONLY).
	UnknownHost Outcome = iota
	// NotFound means the host is known but no rule matched: 404, flag NR.
	NotFound
	// Matched means Result.Route is set.
	Matched
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case NotFound:
		return "NotFound"
	case Matched:
		return "Matched"
	}
	return "UnknownHost"
}

// Result is the route chosen for one request. It is a small value; the
// pointers it holds are shared and immutable.
type Result struct {
	Outcome Outcome
	// VirtualHost is the selected virtual host (nil for UnknownHost).
	VirtualHost *VirtualHost
	// Route is the matched rule's action (nil unless Matched).
	Route *Route
	// Name is the route name for %ROUTE_NAME%: the rule's name, joined
	// with the match block's name as "<rule>.<match>" when both are set.
	Name string
	// prefixLen is how many bytes of the path the uri condition matched.
	prefixLen int
}

// RewritePath returns the upstream path (with query) for path, the
// request's original path, after the route's uri or uriRegexRewrite; ok is
// false when the route does not rewrite the path. The caller sets
// x-envoy-original-path when ok, as Envoy does.
func (r *Result) RewritePath(path string) (newPath string, ok bool) {
	if r.Route == nil || r.Route.Rewrite == nil {
		return path, false
	}
	return r.Route.Rewrite.rewritePath(path, r.prefixLen)
}

// RewriteAuthority returns the upstream authority when the route or the
// chosen destination d (which may be nil) rewrites it; the route's wins.
func (r *Result) RewriteAuthority(d *Destination) (string, bool) {
	if r.Route != nil && r.Route.Rewrite != nil && r.Route.Rewrite.Authority != "" {
		return r.Route.Rewrite.Authority, true
	}
	if d != nil && d.Authority != "" {
		return d.Authority, true
	}
	return "", false
}

// RedirectLocation returns the Location for a redirect route, keeping the
// query string; "" when the route is not a redirect.
func (r *Result) RedirectLocation(req *Request) string {
	if r.Route == nil || r.Route.Redirect == nil {
		return ""
	}
	return r.Route.Redirect.location(req)
}

// ApplyRequestHeaders applies the request header operations of the chosen
// destination d (may be nil) and then of the route, as Envoy does (the
// route's operations win).
func (r *Result) ApplyRequestHeaders(d *Destination, h http.Header) {
	if d != nil {
		d.RequestHeaders.Apply(h)
	}
	if r.Route != nil {
		r.Route.RequestHeaders.Apply(h)
	}
}

// ApplyResponseHeaders applies the response header operations of d (may
// be nil) and then of the route.
func (r *Result) ApplyResponseHeaders(d *Destination, h http.Header) {
	if d != nil {
		d.ResponseHeaders.Apply(h)
	}
	if r.Route != nil {
		r.Route.ResponseHeaders.Apply(h)
	}
}
