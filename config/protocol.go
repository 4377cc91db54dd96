package config

import "strings"

// Protocol is a port's application protocol, as Istio names it.
type Protocol string

// The protocols Istio knows. Unknown means "detect by sniffing".
const (
	HTTP    Protocol = "HTTP"
	HTTPS   Protocol = "HTTPS"
	HTTP2   Protocol = "HTTP2"
	GRPC    Protocol = "GRPC"
	GRPCWeb Protocol = "GRPC-WEB"
	TCP     Protocol = "TCP"
	TLS     Protocol = "TLS"
	Mongo   Protocol = "MONGO"
	Redis   Protocol = "REDIS"
	MySQL   Protocol = "MYSQL"
	UDP     Protocol = "UDP"
	Unknown Protocol = ""
)

var protocols = map[string]Protocol{
	"http": HTTP, "https": HTTPS, "http2": HTTP2, "grpc": GRPC, "grpc-web": GRPCWeb,
	"tcp": TCP, "tls": TLS, "mongo": Mongo, "redis": Redis, "mysql": MySQL, "udp": UDP,
}

// ParseProtocol parses a protocol name case-insensitively; anything else is
// Unknown.
func ParseProtocol(s string) Protocol {
	return protocols[strings.ToLower(s)]
}

// IsHTTP reports whether p is served by the HTTP connection manager.
func (p Protocol) IsHTTP() bool {
	return p == HTTP || p == HTTP2 || p == GRPC || p == GRPCWeb
}

// IsHTTP2 reports whether upstream connections for p speak HTTP/2.
func (p Protocol) IsHTTP2() bool { return p == HTTP2 || p == GRPC || p == GRPCWeb }

// IsTLS reports whether p carries TLS that a sidecar does not terminate.
func (p Protocol) IsTLS() bool { return p == HTTPS || p == TLS }
