package routing

import (
	"math/bits"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/fault"
)

// Route is the compiled action of one VirtualService HTTP rule (or of a
// registry host's default route). It is immutable.
type Route struct {
	// Name is the rule's name ("" when unnamed; "default" for the route
	// Istio generates for a registry host without a VirtualService).
	Name string
	// VirtualService is "namespace/name" of the VirtualService the rule
	// came from; "" for a default route.
	VirtualService string
	// Rule is the index of the rule in the VirtualService's http list.
	Rule int

	// Destinations, Redirect and DirectResponse are exclusive: exactly one
	// is set. Destinations have positive relative weights.
	Destinations   []Destination
	Redirect       *Redirect
	DirectResponse *DirectResponse
	totalWeight    uint64

	// Rewrite rewrites the path and authority before forwarding; nil
	// means none.
	Rewrite *Rewrite
	// RequestHeaders and ResponseHeaders are the rule-level header
	// operations; response operations apply to local replies too.
	RequestHeaders, ResponseHeaders HeaderOps
	// Timeout is the route timeout covering all attempts; zero means none.
	Timeout time.Duration
	// Retry is the retry policy; nil means no retries.
	Retry *RetryPolicy
	// Fault is the fault injection; nil means none.
	Fault *fault.Policy
	// Mirrors are the shadow destinations, each with its own percentage.
	Mirrors []Mirror
	// CORS is the CORS policy; nil means none.
	CORS *CORS
}

// Destination is one weighted upstream of a route.
type Destination struct {
	// Cluster is Envoy's cluster name "outbound|<port>|<subset>|<fqdn>".
	Cluster string
	// Host is the destination's FQDN, Subset its subset ("" for none),
	// Port the resolved service port.
	Host   string
	Subset string
	Port   uint32
	// Weight is the relative weight (1 when the route has one destination).
	Weight uint32
	// RequestHeaders and ResponseHeaders apply only when this destination
	// is chosen, before the route's own operations.
	RequestHeaders, ResponseHeaders HeaderOps
	// Authority, if set, rewrites the host when the route does not.
	Authority string
}

// Pick chooses a destination for one request by weight, from a uniformly
// random r. It returns nil when the route has no destinations (a redirect
// or direct response).
func (rt *Route) Pick(r uint64) *Destination { return pick(rt.Destinations, rt.totalWeight, r) }

// pick chooses from ds by weight (total is the sum) with random r.
func pick(ds []Destination, total, r uint64) *Destination {
	switch len(ds) {
	case 0:
		return nil
	case 1:
		return &ds[0]
	}
	x, _ := bits.Mul64(r, total)
	for i := range ds {
		w := uint64(ds[i].Weight)
		if x < w {
			return &ds[i]
		}
		x -= w
	}
	return &ds[len(ds)-1]
}

// Header is one header name (canonical form) and value.
type Header struct {
	Name, Value string
}

// HeaderOps are compiled header operations, applied as Envoy does:
// Remove first, then Set (overwrite), then Add (append). Values are taken
// literally; Envoy %VAR% formatters are the caller's to expand.
type HeaderOps struct {
	Set    []Header
	Add    []Header
	Remove []string

	// setValues[i] is {Set[i].Value}, built once by Compile and shared by
	// every request: a list whose length is its capacity is copied by
	// any append, so sharing it is safe.
	setValues [][]string
}

// Empty reports whether o does nothing.
func (o *HeaderOps) Empty() bool { return len(o.Set)+len(o.Add)+len(o.Remove) == 0 }

// Apply performs o on h.
func (o *HeaderOps) Apply(h http.Header) {
	for _, k := range o.Remove {
		delete(h, k)
	}
	for i, kv := range o.Set {
		if i < len(o.setValues) {
			h[kv.Name] = o.setValues[i]
		} else {
			h[kv.Name] = []string{kv.Value}
		}
	}
	for _, kv := range o.Add {
		h[kv.Name] = append(h[kv.Name], kv.Value)
	}
}

// Rewrite is a compiled HTTPRewrite.
type Rewrite struct {
	// URI replaces the matched part of the path (the prefix for prefix
	// matches, the whole path otherwise); "" means no path rewrite.
	URI string
	// Regex and Replacement rewrite every match in the path when Regex
	// is non-nil (uriRegexRewrite; `\1` is the first group).
	Regex       *regexp.Regexp
	Replacement string
	// Authority replaces the Host/:authority; "" means keep it.
	Authority string
}

// Redirect is a compiled HTTPRedirect.
type Redirect struct {
	// Code is the status, 301 by default.
	Code int
	// Scheme, Authority and Path replace the request's when non-empty.
	Scheme, Authority, Path string
	// Port replaces the request's port when non-zero; the scheme's
	// default port is left out of the Location.
	Port uint32
}

// DirectResponse is a compiled HTTPDirectResponse.
type DirectResponse struct {
	Status int
	Body   []byte
}

// rewritePath applies rw to path (with its query) given how many bytes of
// it the match consumed. ok is false when the path is unchanged.
func (rw *Rewrite) rewritePath(path string, prefixLen int) (string, bool) {
	p, q := path, ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		p, q = path[:i], path[i:]
	}
	switch {
	case rw.Regex != nil:
		return rw.Regex.ReplaceAllString(p, rw.Replacement) + q, true
	case rw.URI != "":
		if prefixLen > len(p) {
			prefixLen = len(p)
		}
		return rw.URI + p[prefixLen:] + q, true
	}
	return path, false
}

// location builds the redirect target for req, as Envoy's newUri does.
func (rd *Redirect) location(req *Request) string {
	scheme := req.scheme()
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	host := rd.Authority
	if host == "" {
		host = requestHost(req.Authority, req.scheme(), scheme, rd.Port != 0)
	}
	if rd.Port != 0 {
		// The scheme's default port is not written (Istio drops it).
		host = stripPort(host)
		if !(rd.Port == 80 && scheme == "http" || rd.Port == 443 && scheme == "https") {
			host += ":" + strconv.FormatUint(uint64(rd.Port), 10)
		}
	}
	path := req.Path
	if rd.Path != "" {
		path = rd.Path
		if i := strings.IndexByte(req.Path, '?'); i >= 0 && !strings.Contains(rd.Path, "?") {
			path += req.Path[i:]
		}
	}
	return scheme + "://" + host + path
}

// requestHost is Envoy's processRequestHost: the request host, without its
// port when a new port is set or the scheme changes away from the port's
// default.
func requestHost(authority, oldScheme, newScheme string, newPort bool) string {
	h := stripPort(authority)
	if h == authority {
		return authority
	}
	port := authority[len(h):]
	if newPort || newScheme != oldScheme && (oldScheme == "https" && port == ":443" || oldScheme == "http" && port == ":80") {
		return h
	}
	return authority
}

// stripPort removes a ":port" suffix, keeping IPv6 brackets.
func stripPort(a string) string {
	if strings.HasPrefix(a, "[") {
		if i := strings.LastIndex(a, "]:"); i > 0 {
			return a[:i+1]
		}
		return a
	}
	if i := strings.LastIndexByte(a, ':'); i >= 0 && strings.IndexByte(a, ':') == i {
		return a[:i]
	}
	return a
}
