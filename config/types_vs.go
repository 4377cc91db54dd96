package config

// VirtualService is the spec of an Istio VirtualService: how requests for a
// set of hosts are routed. Field meanings follow istio.io/api
// networking/v1alpha3/virtual_service.proto.
type VirtualService struct {
	// Hosts are the destination hosts this VirtualService applies to; short
	// names expand with the resource's namespace.
	Hosts []string `json:"hosts,omitempty"`
	// Gateways names the gateways (and "mesh" for sidecars) that apply these
	// routes. Empty means ["mesh"].
	Gateways []string `json:"gateways,omitempty"`
	// HTTP rules, first match wins.
	HTTP []HTTPRoute `json:"http,omitempty"`
	// TLS rules for unterminated TLS, matched on SNI.
	TLS []TLSRoute `json:"tls,omitempty"`
	// TCP rules for opaque TCP.
	TCP []TCPRoute `json:"tcp,omitempty"`
	// ExportTo limits visibility; empty means everywhere.
	ExportTo []string `json:"exportTo,omitempty"`
}

// HTTPRoute is one rule of a VirtualService's http list.
type HTTPRoute struct {
	Name  string             `json:"name,omitempty"`
	Match []HTTPMatchRequest `json:"match,omitempty"`
	// Route, Redirect, DirectResponse and Delegate are mutually exclusive.
	Route            []HTTPRouteDestination `json:"route,omitempty"`
	Redirect         *HTTPRedirect          `json:"redirect,omitempty"`
	DirectResponse   *HTTPDirectResponse    `json:"directResponse,omitempty"`
	Delegate         *Delegate              `json:"delegate,omitempty" remora:"unsupported"`
	Rewrite          *HTTPRewrite           `json:"rewrite,omitempty"`
	Timeout          *Duration              `json:"timeout,omitempty"`
	Retries          *HTTPRetry             `json:"retries,omitempty"`
	Fault            *HTTPFaultInjection    `json:"fault,omitempty"`
	Mirror           *Destination           `json:"mirror,omitempty"`
	Mirrors          []HTTPMirrorPolicy     `json:"mirrors,omitempty"`
	MirrorPercentage *Percent               `json:"mirrorPercentage,omitempty"`
	// MirrorPercent is the deprecated integer form of MirrorPercentage.
	MirrorPercent *uint32     `json:"mirrorPercent,omitempty" remora:"deprecated=use mirrorPercentage"`
	CorsPolicy    *CorsPolicy `json:"corsPolicy,omitempty"`
	Headers       *Headers    `json:"headers,omitempty"`
}

// removedFields lists fields Istio removed that old files still carry.
func (HTTPRoute) removedFields() map[string]string {
	return map[string]string{
		"websocketUpgrade":      "removed from Istio (WebSocket upgrades are always allowed); ignored",
		"appendHeaders":         "removed from Istio; use headers.request.add; ignored",
		"removeResponseHeaders": "removed from Istio; use headers.response.remove; ignored",
		"appendResponseHeaders": "removed from Istio; use headers.response.add; ignored",
		"appendRequestHeaders":  "removed from Istio; use headers.request.add; ignored",
		"removeRequestHeaders":  "removed from Istio; use headers.request.remove; ignored",
	}
}

// Delegate points an HTTP rule at another VirtualService.
type Delegate struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// HTTPMatchRequest is one match block: every condition in it must hold.
type HTTPMatchRequest struct {
	Name      string       `json:"name,omitempty"`
	URI       *StringMatch `json:"uri,omitempty"`
	Scheme    *StringMatch `json:"scheme,omitempty"`
	Method    *StringMatch `json:"method,omitempty"`
	Authority *StringMatch `json:"authority,omitempty"`
	// Headers match by lower-case name; an empty StringMatch means present.
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// Port restricts the rule to the listener of that port; 0 means any.
	Port            uint32                 `json:"port,omitempty"`
	SourceLabels    map[string]string      `json:"sourceLabels,omitempty"`
	Gateways        []string               `json:"gateways,omitempty"`
	QueryParams     map[string]StringMatch `json:"queryParams,omitempty"`
	IgnoreURICase   bool                   `json:"ignoreUriCase,omitempty"`
	WithoutHeaders  map[string]StringMatch `json:"withoutHeaders,omitempty"`
	SourceNamespace string                 `json:"sourceNamespace,omitempty"`
	StatPrefix      string                 `json:"statPrefix,omitempty"`
}

// StringMatch is Istio's oneof of exact, prefix and RE2 regex. When none is
// set it matches any present value.
type StringMatch struct {
	Exact  *string `json:"exact,omitempty"`
	Prefix *string `json:"prefix,omitempty"`
	Regex  *string `json:"regex,omitempty"`
}

// HTTPRouteDestination is one weighted destination of an HTTP rule.
type HTTPRouteDestination struct {
	Destination Destination `json:"destination"`
	// Weight is relative to the other destinations; with one destination
	// it is ignored.
	Weight  int32    `json:"weight,omitempty"`
	Headers *Headers `json:"headers,omitempty"`
}

// RouteDestination is one weighted destination of a TCP or TLS rule.
type RouteDestination struct {
	Destination Destination `json:"destination"`
	Weight      int32       `json:"weight,omitempty"`
}

// Destination names a service (and optionally a subset and port).
type Destination struct {
	Host   string        `json:"host"`
	Subset string        `json:"subset,omitempty"`
	Port   *PortSelector `json:"port,omitempty"`
}

// PortSelector selects a service port by number.
type PortSelector struct {
	Number uint32 `json:"number,omitempty"`
}

// HTTPRedirect answers with a redirect instead of forwarding.
type HTTPRedirect struct {
	URI          string     `json:"uri,omitempty"`
	Authority    string     `json:"authority,omitempty"`
	Port         uint32     `json:"port,omitempty"`
	DerivePort   DerivePort `json:"derivePort,omitempty"`
	Scheme       string     `json:"scheme,omitempty"`
	RedirectCode uint32     `json:"redirectCode,omitempty"`
}

// DerivePort chooses the port of a redirect when Port is unset.
type DerivePort string

func (DerivePort) enumValues() []string {
	return []string{"FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"}
}

// HTTPDirectResponse answers with a fixed status and body.
type HTTPDirectResponse struct {
	Status uint32    `json:"status"`
	Body   *HTTPBody `json:"body,omitempty"`
}

// HTTPBody is a direct response body, as a string or base64 bytes.
type HTTPBody struct {
	String *string `json:"string,omitempty"`
	Bytes  *string `json:"bytes,omitempty"`
}

// HTTPRewrite rewrites the path or authority before forwarding.
type HTTPRewrite struct {
	URI             string        `json:"uri,omitempty"`
	Authority       string        `json:"authority,omitempty"`
	URIRegexRewrite *RegexRewrite `json:"uriRegexRewrite,omitempty"`
}

// RegexRewrite replaces every match of Match in the path with Rewrite.
type RegexRewrite struct {
	Match   string `json:"match,omitempty"`
	Rewrite string `json:"rewrite,omitempty"`
}

// HTTPRetry is a rule's retry policy. A nil *HTTPRetry means Istio's
// default policy; Attempts 0 means no retries at all.
type HTTPRetry struct {
	Attempts                 int32     `json:"attempts,omitempty"`
	PerTryTimeout            *Duration `json:"perTryTimeout,omitempty"`
	RetryOn                  string    `json:"retryOn,omitempty"`
	RetryRemoteLocalities    *bool     `json:"retryRemoteLocalities,omitempty"`
	RetryIgnorePreviousHosts *bool     `json:"retryIgnorePreviousHosts,omitempty"`
	Backoff                  *Duration `json:"backoff,omitempty"`
}

// HTTPFaultInjection injects delays and aborts.
type HTTPFaultInjection struct {
	Delay *FaultDelay `json:"delay,omitempty"`
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay delays a percentage of requests.
type FaultDelay struct {
	FixedDelay       *Duration `json:"fixedDelay,omitempty"`
	ExponentialDelay *Duration `json:"exponentialDelay,omitempty"`
	Percentage       *Percent  `json:"percentage,omitempty"`
	// Percent is the legacy integer percentage, used only when Percentage
	// is absent.
	Percent *int32 `json:"percent,omitempty" remora:"deprecated=use percentage.value"`
}

// FaultAbort aborts a percentage of requests with a status.
type FaultAbort struct {
	HTTPStatus *int32   `json:"httpStatus,omitempty"`
	GRPCStatus string   `json:"grpcStatus,omitempty"`
	HTTP2Error string   `json:"http2Error,omitempty"`
	Percentage *Percent `json:"percentage,omitempty"`
}

// Percent is a percentage in [0, 100].
type Percent struct {
	Value float64 `json:"value"`
}

// HTTPMirrorPolicy is one entry of a rule's mirrors list.
type HTTPMirrorPolicy struct {
	Destination Destination `json:"destination"`
	Percentage  *Percent    `json:"percentage,omitempty"`
}

// CorsPolicy is a rule's CORS policy.
type CorsPolicy struct {
	AllowOrigins []StringMatch `json:"allowOrigins,omitempty"`
	// AllowOrigin is the deprecated exact-match form of AllowOrigins.
	AllowOrigin         []string           `json:"allowOrigin,omitempty" remora:"deprecated=use allowOrigins"`
	AllowMethods        []string           `json:"allowMethods,omitempty"`
	AllowHeaders        []string           `json:"allowHeaders,omitempty"`
	ExposeHeaders       []string           `json:"exposeHeaders,omitempty"`
	MaxAge              *Duration          `json:"maxAge,omitempty"`
	AllowCredentials    *bool              `json:"allowCredentials,omitempty"`
	UnmatchedPreflights UnmatchedPreflight `json:"unmatchedPreflights,omitempty"`
}

// UnmatchedPreflight says what happens to a preflight whose origin does not
// match: FORWARD (the default) or IGNORE.
type UnmatchedPreflight string

func (UnmatchedPreflight) enumValues() []string {
	return []string{"UNSPECIFIED", "FORWARD", "IGNORE"}
}

// Headers are request and response header operations.
type Headers struct {
	Request  *HeaderOperations `json:"request,omitempty"`
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations sets, adds and removes headers.
type HeaderOperations struct {
	Set    map[string]string `json:"set,omitempty"`
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// TLSRoute routes unterminated TLS by SNI.
type TLSRoute struct {
	Match []TLSMatchAttributes `json:"match,omitempty"`
	Route []RouteDestination   `json:"route,omitempty"`
}

// TLSMatchAttributes matches a TLS connection.
type TLSMatchAttributes struct {
	SNIHosts           []string          `json:"sniHosts,omitempty"`
	DestinationSubnets []string          `json:"destinationSubnets,omitempty"`
	Port               uint32            `json:"port,omitempty"`
	SourceLabels       map[string]string `json:"sourceLabels,omitempty"`
	Gateways           []string          `json:"gateways,omitempty"`
	SourceNamespace    string            `json:"sourceNamespace,omitempty"`
}

// TCPRoute routes opaque TCP.
type TCPRoute struct {
	Match []L4MatchAttributes `json:"match,omitempty"`
	Route []RouteDestination  `json:"route,omitempty"`
}

// L4MatchAttributes matches a TCP connection.
type L4MatchAttributes struct {
	DestinationSubnets []string          `json:"destinationSubnets,omitempty"`
	Port               uint32            `json:"port,omitempty"`
	SourceSubnet       string            `json:"sourceSubnet,omitempty"`
	SourceLabels       map[string]string `json:"sourceLabels,omitempty"`
	Gateways           []string          `json:"gateways,omitempty"`
	SourceNamespace    string            `json:"sourceNamespace,omitempty"`
}
