package config

// DestinationRule is the spec of an Istio DestinationRule: the policies
// that apply to traffic for a host after routing.
type DestinationRule struct {
	Host             string            `json:"host"`
	TrafficPolicy    *TrafficPolicy    `json:"trafficPolicy,omitempty"`
	Subsets          []Subset          `json:"subsets,omitempty"`
	ExportTo         []string          `json:"exportTo,omitempty"`
	WorkloadSelector *WorkloadSelector `json:"workloadSelector,omitempty"`
}

// WorkloadSelector selects workloads by label (DestinationRule form).
type WorkloadSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Subset is a named set of endpoints selected by labels, with an optional
// policy that overrides the rule's per component.
type Subset struct {
	Name          string            `json:"name"`
	Labels        map[string]string `json:"labels,omitempty"`
	TrafficPolicy *TrafficPolicy    `json:"trafficPolicy,omitempty"`
}

// TrafficPolicy groups load balancing, connection pool, outlier detection
// and TLS settings. A nil component means the default.
type TrafficPolicy struct {
	LoadBalancer      *LoadBalancerSettings   `json:"loadBalancer,omitempty"`
	ConnectionPool    *ConnectionPoolSettings `json:"connectionPool,omitempty"`
	OutlierDetection  *OutlierDetection       `json:"outlierDetection,omitempty"`
	TLS               *ClientTLSSettings      `json:"tls,omitempty"`
	PortLevelSettings []PortTrafficPolicy     `json:"portLevelSettings,omitempty"`
	Tunnel            *TunnelSettings         `json:"tunnel,omitempty" remora:"unsupported"`
	ProxyProtocol     *ProxyProtocol          `json:"proxyProtocol,omitempty" remora:"unsupported"`
	RetryBudget       *RetryBudget            `json:"retryBudget,omitempty" remora:"unsupported"`
}

// PortTrafficPolicy is a policy for one destination port; it replaces the
// top-level policy for that port entirely (fields it omits get defaults).
type PortTrafficPolicy struct {
	Port             *PortSelector           `json:"port,omitempty"`
	LoadBalancer     *LoadBalancerSettings   `json:"loadBalancer,omitempty"`
	ConnectionPool   *ConnectionPoolSettings `json:"connectionPool,omitempty"`
	OutlierDetection *OutlierDetection       `json:"outlierDetection,omitempty"`
	TLS              *ClientTLSSettings      `json:"tls,omitempty"`
}

// TunnelSettings tunnels TCP over HTTP CONNECT or POST.
type TunnelSettings struct {
	Protocol   string `json:"protocol,omitempty"`
	TargetHost string `json:"targetHost,omitempty"`
	TargetPort uint32 `json:"targetPort,omitempty"`
}

// ProxyProtocol sends a PROXY protocol header upstream.
type ProxyProtocol struct {
	Version string `json:"version,omitempty"`
}

// RetryBudget bounds concurrent retries as a share of active requests.
type RetryBudget struct {
	Percent             *Percent `json:"percent,omitempty"`
	MinRetryConcurrency uint32   `json:"minRetryConcurrency,omitempty"`
}

// LoadBalancerSettings chooses how endpoints are picked. Zero value means
// LEAST_REQUEST, as in Istio since 1.14.
type LoadBalancerSettings struct {
	Simple             SimpleLB             `json:"simple,omitempty"`
	ConsistentHash     *ConsistentHashLB    `json:"consistentHash,omitempty"`
	LocalityLBSetting  *LocalityLBSetting   `json:"localityLbSetting,omitempty" remora:"unsupported"`
	WarmupDurationSecs *Duration            `json:"warmupDurationSecs,omitempty" remora:"unsupported"`
	Warmup             *WarmupConfiguration `json:"warmup,omitempty" remora:"unsupported"`
}

// SimpleLB is a simple load-balancing algorithm.
type SimpleLB string

func (SimpleLB) enumValues() []string {
	return []string{"UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"}
}

// ConsistentHashLB hashes a request property to pick an endpoint.
type ConsistentHashLB struct {
	HTTPHeaderName         string      `json:"httpHeaderName,omitempty"`
	HTTPCookie             *HTTPCookie `json:"httpCookie,omitempty"`
	UseSourceIP            bool        `json:"useSourceIp,omitempty"`
	HTTPQueryParameterName string      `json:"httpQueryParameterName,omitempty"`
	RingHash               *RingHash   `json:"ringHash,omitempty"`
	Maglev                 *MagLev     `json:"maglev,omitempty"`
	// MinimumRingSize is the deprecated form of RingHash.MinimumRingSize.
	MinimumRingSize uint64 `json:"minimumRingSize,omitempty" remora:"deprecated=use ringHash.minimumRingSize"`
}

// HTTPCookie names the cookie to hash; with a TTL it is generated when
// absent.
type HTTPCookie struct {
	Name       string            `json:"name"`
	Path       string            `json:"path,omitempty"`
	TTL        *Duration         `json:"ttl,omitempty"`
	Attributes []CookieAttribute `json:"attributes,omitempty"`
}

// CookieAttribute is an extra attribute of a generated cookie.
type CookieAttribute struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// RingHash selects the ring-hash algorithm.
type RingHash struct {
	MinimumRingSize uint64 `json:"minimumRingSize,omitempty"`
}

// MagLev selects the Maglev algorithm.
type MagLev struct {
	TableSize uint64 `json:"tableSize,omitempty"`
}

// LocalityLBSetting is locality-weighted load balancing and failover.
type LocalityLBSetting struct {
	Distribute       []LocalityDistribute `json:"distribute,omitempty"`
	Failover         []LocalityFailover   `json:"failover,omitempty"`
	FailoverPriority []string             `json:"failoverPriority,omitempty"`
	Enabled          *bool                `json:"enabled,omitempty"`
}

// LocalityDistribute weights traffic from one locality to others.
type LocalityDistribute struct {
	From string            `json:"from,omitempty"`
	To   map[string]uint32 `json:"to,omitempty"`
}

// LocalityFailover names where traffic from a region fails over to.
type LocalityFailover struct {
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// WarmupConfiguration is slow start for new endpoints.
type WarmupConfiguration struct {
	Duration       *Duration `json:"duration,omitempty"`
	MinimumPercent *float64  `json:"minimumPercent,omitempty"`
	Aggression     *float64  `json:"aggression,omitempty"`
}

// ConnectionPoolSettings are the circuit-breaker limits of a cluster.
type ConnectionPoolSettings struct {
	TCP  *TCPSettings  `json:"tcp,omitempty"`
	HTTP *HTTPSettings `json:"http,omitempty"`
}

// TCPSettings are TCP limits; zero means unlimited (Istio cannot express 0).
type TCPSettings struct {
	MaxConnections        int32         `json:"maxConnections,omitempty"`
	ConnectTimeout        *Duration     `json:"connectTimeout,omitempty"`
	TCPKeepalive          *TCPKeepalive `json:"tcpKeepalive,omitempty"`
	MaxConnectionDuration *Duration     `json:"maxConnectionDuration,omitempty"`
	IdleTimeout           *Duration     `json:"idleTimeout,omitempty"`
}

// TCPKeepalive turns on SO_KEEPALIVE; zero fields keep the OS defaults.
type TCPKeepalive struct {
	Probes   uint32    `json:"probes,omitempty"`
	Time     *Duration `json:"time,omitempty"`
	Interval *Duration `json:"interval,omitempty"`
}

// HTTPSettings are HTTP limits; zero means unlimited.
type HTTPSettings struct {
	HTTP1MaxPendingRequests  int32           `json:"http1MaxPendingRequests,omitempty"`
	HTTP2MaxRequests         int32           `json:"http2MaxRequests,omitempty"`
	MaxRequestsPerConnection int32           `json:"maxRequestsPerConnection,omitempty"`
	MaxRetries               int32           `json:"maxRetries,omitempty"`
	IdleTimeout              *Duration       `json:"idleTimeout,omitempty"`
	H2UpgradePolicy          H2UpgradePolicy `json:"h2UpgradePolicy,omitempty"`
	UseClientProtocol        bool            `json:"useClientProtocol,omitempty"`
	MaxConcurrentStreams     int32           `json:"maxConcurrentStreams,omitempty"`
}

// H2UpgradePolicy says whether HTTP/1.1 upstream connections are upgraded
// to HTTP/2.
type H2UpgradePolicy string

func (H2UpgradePolicy) enumValues() []string { return []string{"DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"} }

// OutlierDetection ejects failing endpoints. Nil pointers mean Envoy's
// defaults as Istio applies them (5 consecutive 5xx, 10s, 30s, 10%, 0%).
type OutlierDetection struct {
	SplitExternalLocalOriginErrors bool      `json:"splitExternalLocalOriginErrors,omitempty"`
	ConsecutiveLocalOriginFailures *uint32   `json:"consecutiveLocalOriginFailures,omitempty"`
	ConsecutiveGatewayErrors       *uint32   `json:"consecutiveGatewayErrors,omitempty"`
	Consecutive5xxErrors           *uint32   `json:"consecutive5xxErrors,omitempty" proto:"consecutive_5xx_errors"`
	Interval                       *Duration `json:"interval,omitempty"`
	BaseEjectionTime               *Duration `json:"baseEjectionTime,omitempty"`
	MaxEjectionPercent             int32     `json:"maxEjectionPercent,omitempty"`
	MinHealthPercent               int32     `json:"minHealthPercent,omitempty"`
	// ConsecutiveErrors is deprecated and ignored, as since Istio 1.7.
	ConsecutiveErrors int32 `json:"consecutiveErrors,omitempty" remora:"deprecated=ignored since Istio 1.7; use consecutive5xxErrors"`
}

// ClientTLSSettings is TLS origination towards upstream endpoints.
type ClientTLSSettings struct {
	Mode               TLSClientMode `json:"mode,omitempty"`
	ClientCertificate  string        `json:"clientCertificate,omitempty"`
	PrivateKey         string        `json:"privateKey,omitempty"`
	CACertificates     string        `json:"caCertificates,omitempty"`
	CredentialName     string        `json:"credentialName,omitempty" remora:"unsupported"`
	SubjectAltNames    []string      `json:"subjectAltNames,omitempty"`
	SNI                string        `json:"sni,omitempty"`
	InsecureSkipVerify *bool         `json:"insecureSkipVerify,omitempty"`
	CACRL              string        `json:"caCrl,omitempty" remora:"unsupported"`
}

// TLSClientMode is the upstream TLS mode.
type TLSClientMode string

func (TLSClientMode) enumValues() []string {
	return []string{"DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"}
}
