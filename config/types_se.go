package config

// ServiceEntry is the spec of an Istio ServiceEntry: it adds hosts, their
// ports and endpoints to the service registry.
type ServiceEntry struct {
	Hosts            []string               `json:"hosts,omitempty"`
	Addresses        []string               `json:"addresses,omitempty"`
	Ports            []ServicePort          `json:"ports,omitempty"`
	Location         Location               `json:"location,omitempty"`
	Resolution       Resolution             `json:"resolution,omitempty"`
	Endpoints        []WorkloadEntry        `json:"endpoints,omitempty"`
	WorkloadSelector *EntryWorkloadSelector `json:"workloadSelector,omitempty"`
	ExportTo         []string               `json:"exportTo,omitempty"`
	SubjectAltNames  []string               `json:"subjectAltNames,omitempty"`
}

// ServicePort is a port of a ServiceEntry.
type ServicePort struct {
	Number uint32 `json:"number"`
	// Protocol is case-insensitive; empty means detect by sniffing.
	Protocol   string `json:"protocol,omitempty"`
	Name       string `json:"name,omitempty"`
	TargetPort uint32 `json:"targetPort,omitempty"`
}

// EntryWorkloadSelector selects WorkloadEntries by label (ServiceEntry and
// Sidecar form).
type EntryWorkloadSelector struct {
	Labels map[string]string `json:"labels,omitempty"`
}

// Location says whether a ServiceEntry is inside or outside the mesh.
// Empty means MESH_EXTERNAL.
type Location string

func (Location) enumValues() []string { return []string{"MESH_EXTERNAL", "MESH_INTERNAL"} }

// Resolution says how a ServiceEntry's endpoints are found. Empty means
// NONE (the original destination).
type Resolution string

func (Resolution) enumValues() []string {
	return []string{"NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"}
}

// WorkloadEntry is the spec of an Istio WorkloadEntry, and the shape of a
// ServiceEntry endpoint.
type WorkloadEntry struct {
	Address string `json:"address,omitempty"`
	// Ports maps a service port name to this endpoint's port.
	Ports    map[string]uint32 `json:"ports,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Network  string            `json:"network,omitempty"`
	Locality string            `json:"locality,omitempty"`
	// Weight is the load-balancing weight; 0 means 1.
	Weight         uint32 `json:"weight,omitempty"`
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// Sidecar is the spec of an Istio Sidecar: this proxy's ingress and egress
// scope and its outbound traffic policy.
type Sidecar struct {
	WorkloadSelector      *EntryWorkloadSelector  `json:"workloadSelector,omitempty"`
	Ingress               []IstioIngressListener  `json:"ingress,omitempty"`
	Egress                []IstioEgressListener   `json:"egress,omitempty"`
	OutboundTrafficPolicy *OutboundTrafficPolicy  `json:"outboundTrafficPolicy,omitempty"`
	InboundConnectionPool *ConnectionPoolSettings `json:"inboundConnectionPool,omitempty"`
}

// IstioIngressListener is an inbound listener of a Sidecar.
type IstioIngressListener struct {
	Port            *Port                   `json:"port,omitempty"`
	Bind            string                  `json:"bind,omitempty"`
	CaptureMode     CaptureMode             `json:"captureMode,omitempty"`
	DefaultEndpoint string                  `json:"defaultEndpoint,omitempty"`
	TLS             *ServerTLSSettings      `json:"tls,omitempty" remora:"unsupported"`
	ConnectionPool  *ConnectionPoolSettings `json:"connectionPool,omitempty"`
}

// IstioEgressListener is an outbound scope of a Sidecar.
type IstioEgressListener struct {
	Port        *Port       `json:"port,omitempty"`
	Bind        string      `json:"bind,omitempty"`
	CaptureMode CaptureMode `json:"captureMode,omitempty"`
	// Hosts are "namespace/dnsName" entries this proxy may reach.
	Hosts []string `json:"hosts,omitempty"`
}

// CaptureMode is how traffic reaches a Sidecar listener.
type CaptureMode string

func (CaptureMode) enumValues() []string { return []string{"DEFAULT", "IPTABLES", "NONE"} }

// OutboundTrafficPolicy says what happens to destinations outside the
// registry. An object without mode is REGISTRY_ONLY, the proto's zero value.
type OutboundTrafficPolicy struct {
	Mode        OutboundMode `json:"mode,omitempty"`
	EgressProxy *Destination `json:"egressProxy,omitempty" remora:"unsupported"`
}

// OutboundMode is ALLOW_ANY or REGISTRY_ONLY.
type OutboundMode string

func (OutboundMode) enumValues() []string { return []string{"REGISTRY_ONLY", "ALLOW_ANY"} }
