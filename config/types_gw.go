package config

// Gateway is the spec of an Istio Gateway: the listeners of a gateway
// workload selected by labels.
type Gateway struct {
	Servers []Server `json:"servers,omitempty"`
	// Selector picks the gateway workloads by label; empty selects all.
	Selector map[string]string `json:"selector,omitempty"`
}

// Server is one listener of a Gateway.
type Server struct {
	Port            *Port              `json:"port,omitempty"`
	Bind            string             `json:"bind,omitempty"`
	Hosts           []string           `json:"hosts,omitempty"`
	TLS             *ServerTLSSettings `json:"tls,omitempty"`
	DefaultEndpoint string             `json:"defaultEndpoint,omitempty" remora:"unsupported"`
	Name            string             `json:"name,omitempty"`
}

// Port is a numbered, named port with a protocol.
type Port struct {
	Number uint32 `json:"number"`
	// Protocol is one of HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, TCP,
	// TLS (case-insensitive); empty means detect (ServiceEntry only).
	Protocol   string `json:"protocol,omitempty"`
	Name       string `json:"name,omitempty"`
	TargetPort uint32 `json:"targetPort,omitempty"`
}

// ServerTLSSettings is TLS termination (or passthrough) on a gateway
// server.
type ServerTLSSettings struct {
	HTTPSRedirect         bool          `json:"httpsRedirect,omitempty"`
	Mode                  TLSServerMode `json:"mode,omitempty"`
	ServerCertificate     string        `json:"serverCertificate,omitempty"`
	PrivateKey            string        `json:"privateKey,omitempty"`
	CACertificates        string        `json:"caCertificates,omitempty"`
	CACRL                 string        `json:"caCrl,omitempty" remora:"unsupported"`
	CredentialName        string        `json:"credentialName,omitempty" remora:"unsupported"`
	CredentialNames       []string      `json:"credentialNames,omitempty" remora:"unsupported"`
	SubjectAltNames       []string      `json:"subjectAltNames,omitempty"`
	VerifyCertificateSpki []string      `json:"verifyCertificateSpki,omitempty" remora:"unsupported"`
	VerifyCertificateHash []string      `json:"verifyCertificateHash,omitempty" remora:"unsupported"`
	MinProtocolVersion    TLSVersion    `json:"minProtocolVersion,omitempty"`
	MaxProtocolVersion    TLSVersion    `json:"maxProtocolVersion,omitempty"`
	CipherSuites          []string      `json:"cipherSuites,omitempty"`
}

// TLSServerMode is a gateway server's TLS mode.
type TLSServerMode string

func (TLSServerMode) enumValues() []string {
	return []string{"PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"}
}

// TLSVersion is a TLS protocol version bound.
type TLSVersion string

func (TLSVersion) enumValues() []string {
	return []string{"TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"}
}
