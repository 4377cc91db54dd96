package telemetry

import "strconv"

// Reporter says which side of a request the reporting proxy is on
// (Istio's reporter label).
type Reporter uint8

const (
	// ReporterSource is the client side: an outbound sidecar listener or a
	// gateway. It is the zero value.
	ReporterSource Reporter = iota
	// ReporterDestination is the server side: an inbound sidecar listener.
	ReporterDestination
)

// String returns the label value: "source" or "destination".
func (r Reporter) String() string {
	if r == ReporterDestination {
		return "destination"
	}
	return "source"
}

// Protocol is Istio's request_protocol label.
type Protocol uint8

const (
	// ProtocolHTTP is HTTP/1.1 or HTTP/2 that is not gRPC. It is the zero value.
	ProtocolHTTP Protocol = iota
	// ProtocolGRPC is a request with content-type application/grpc.
	ProtocolGRPC
	// ProtocolTCP is an opaque TCP (or TLS passthrough) connection. TCP
	// records always report it, whatever Labels.Protocol says.
	ProtocolTCP
)

// String returns the label value: "http", "grpc" or "tcp".
func (p Protocol) String() string {
	switch p {
	case ProtocolGRPC:
		return "grpc"
	case ProtocolTCP:
		return "tcp"
	}
	return "http"
}

// SecurityPolicy is Istio's connection_security_policy label.
type SecurityPolicy uint8

const (
	// SecurityUnknown is what a source reporter always reports. It is the
	// zero value.
	SecurityUnknown SecurityPolicy = iota
	// SecurityNone is a destination reporter's plaintext downstream.
	SecurityNone
	// SecurityMutualTLS is a destination reporter's mTLS downstream.
	SecurityMutualTLS
)

// String returns the label value: "unknown", "none" or "mutual_tls".
func (s SecurityPolicy) String() string {
	switch s {
	case SecurityNone:
		return "none"
	case SecurityMutualTLS:
		return "mutual_tls"
	}
	return "unknown"
}

// Peer is one side of a request or connection in Istio's source_* and
// destination_* labels. An empty field is reported as "unknown".
type Peer struct {
	Workload          string // *_workload: the owner, e.g. Deployment name
	Namespace         string // *_workload_namespace
	Principal         string // *_principal: SPIFFE ID from the peer certificate
	App               string // *_app: the app label
	Version           string // *_version: the version label
	CanonicalService  string // *_canonical_service
	CanonicalRevision string // *_canonical_revision
	Cluster           string // *_cluster: the mesh cluster ID
}

// Service is the destination service of a request or connection.
//
// Cardinality guarantee: Host must be a hostname known to the service
// registry (a ServiceEntry or Kubernetes Service host), never a raw Host
// header or address from the wire; pass "" (reported "unknown") otherwise.
// Whatever is passed, the number of series per metric stays capped (see
// DefaultMaxSeries).
type Service struct {
	Host      string // destination_service: FQDN, e.g. reviews.default.svc.cluster.local
	Name      string // destination_service_name, e.g. reviews
	Namespace string // destination_service_namespace, e.g. default
}

// Labels are the values of Istio's standard labels shared by HTTP and TCP
// metrics. The struct is comparable; the proxy typically builds one per
// listener or route and copies it into each record.
type Labels struct {
	Reporter       Reporter
	Source         Peer
	Destination    Peer
	Service        Service
	Protocol       Protocol       // ignored for TCP records
	SecurityPolicy SecurityPolicy // connection_security_policy
}

// Istio's label names, in the order Istio's stats filter emits them. HTTP
// metrics carry all of them; TCP metrics all but response_code and
// grpc_response_status.
var (
	httpLabelNames = []string{
		"reporter",
		"source_workload", "source_canonical_service", "source_canonical_revision",
		"source_workload_namespace", "source_principal", "source_app", "source_version",
		"source_cluster",
		"destination_workload", "destination_workload_namespace", "destination_principal",
		"destination_app", "destination_version", "destination_service",
		"destination_canonical_service", "destination_canonical_revision",
		"destination_service_name", "destination_service_namespace", "destination_cluster",
		"request_protocol", "response_code", "grpc_response_status", "response_flags",
		"connection_security_policy",
	}
	tcpLabelNames = append(append([]string(nil), httpLabelNames[:21]...), httpLabelNames[23:]...)
)

// unknown is Istio's value for a label it has no value for.
const unknown = "unknown"

// orUnknown returns s, or "unknown" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// values returns the label values for l in httpLabelNames order, with
// response_code and grpc_response_status left empty for the caller.
func (l *Labels) values(protocol string, flags ResponseFlags) []string {
	s, d := &l.Source, &l.Destination
	return []string{
		l.Reporter.String(),
		orUnknown(s.Workload), orUnknown(s.CanonicalService), orUnknown(s.CanonicalRevision),
		orUnknown(s.Namespace), orUnknown(s.Principal), orUnknown(s.App), orUnknown(s.Version),
		orUnknown(s.Cluster),
		orUnknown(d.Workload), orUnknown(d.Namespace), orUnknown(d.Principal),
		orUnknown(d.App), orUnknown(d.Version), orUnknown(l.Service.Host),
		orUnknown(d.CanonicalService), orUnknown(d.CanonicalRevision),
		orUnknown(l.Service.Name), orUnknown(l.Service.Namespace), orUnknown(d.Cluster),
		protocol, "", "", flags.String(), l.SecurityPolicy.String(),
	}
}

// httpValues returns the values of httpLabelNames for one HTTP series.
func (k *httpKey) values() []string {
	v := k.labels.values(k.labels.Protocol.String(), k.flags)
	v[21] = strconv.Itoa(int(k.code))
	if k.labels.Protocol == ProtocolGRPC && k.grpc >= 0 {
		v[22] = strconv.Itoa(int(k.grpc))
	}
	return v
}

// tcpValues returns the values of tcpLabelNames for one TCP series.
func (k *tcpKey) values() []string {
	v := k.labels.values(ProtocolTCP.String(), k.flags)
	return append(v[:21], v[23:]...)
}

// httpKey identifies one HTTP series.
type httpKey struct {
	labels Labels
	code   int32
	grpc   int32
	flags  ResponseFlags
}

// tcpKey identifies one TCP series.
type tcpKey struct {
	labels Labels
	flags  ResponseFlags
}

// overflowValues returns n copies of the label value of the overflow series.
func overflowValues(n int) []string {
	v := make([]string, n)
	for i := range v {
		v[i] = overflowLabel
	}
	return v
}

// overflowLabel is every label's value on a metric's overflow series.
const overflowLabel = "overflow"
