package telemetry

import "math/bits"

// ResponseFlags is Envoy's set of response flags for one request or TCP
// connection (%RESPONSE_FLAGS%, Istio's response_flags label). The zero
// value is the empty set, rendered "-". Bits follow Envoy's
// CORE_RESPONSE_FLAGS order, which is also the order String lists them in.
type ResponseFlags uint32

// Envoy's response flags, in Envoy's order. The comment gives the short name
// and the status code Envoy pairs with it, when it has one.
const (
	FailedLocalHealthCheck           ResponseFlags = 1 << iota // LH: local service failed health check (503)
	NoHealthyUpstream                                          // UH: no healthy upstream host (503)
	UpstreamRequestTimeout                                     // UT: upstream request timeout (504)
	LocalReset                                                 // LR: connection local reset (503)
	UpstreamRemoteReset                                        // UR: upstream remote reset (503)
	UpstreamConnectionFailure                                  // UF: upstream connection failure (503)
	UpstreamConnectionTermination                              // UC: upstream connection termination (503)
	UpstreamOverflow                                           // UO: circuit breaking or pool overflow (503)
	NoRouteFound                                               // NR: no route or no matching filter chain (404)
	DelayInjected                                              // DI: fault delay injected
	FaultInjected                                              // FI: fault abort injected
	RateLimited                                                // RL: rate limited locally (429)
	UnauthorizedExternalService                                // UAEX: denied by external authorization
	RateLimitServiceError                                      // RLSE: rate-limit service error
	DownstreamConnectionTermination                            // DC: downstream connection terminated
	UpstreamRetryLimitExceeded                                 // URX: retry limit or max connect attempts reached
	StreamIdleTimeout                                          // SI: stream idle timeout (408)
	InvalidEnvoyRequestHeaders                                 // IH: invalid x-envoy-* header (400)
	DownstreamProtocolError                                    // DPE: downstream protocol error
	UpstreamMaxStreamDurationReached                           // UMSDR: upstream max stream duration reached
	ResponseFromCacheFilter                                    // RFCF: response served by the cache filter
	NoFilterConfigFound                                        // NFCF: no filter config found
	DurationTimeout                                            // DT: max connection or stream duration exceeded
	UpstreamProtocolError                                      // UPE: upstream protocol error
	NoClusterFound                                             // NC: upstream cluster not found
	OverloadManager                                            // OM: overload manager terminated the request
	DNSResolutionFailed                                        // DF: DNS resolution failed
	DropOverload                                               // DO: dropped by drop_overloads
	DownstreamRemoteReset                                      // DR: downstream remote reset

	numFlags = iota
)

// flagNames holds each flag's Envoy short name, indexed by bit position.
var flagNames = [numFlags]string{
	"LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL",
	"UAEX", "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF",
	"DT", "UPE", "NC", "OM", "DF", "DO", "DR",
}

// String returns "-" for the empty set, else the short names of the flags
// joined by commas in Envoy's order ("UH", "DI,FI"). It does not allocate
// for zero or one flag. Bits Envoy does not define are ignored.
func (f ResponseFlags) String() string {
	f &= 1<<numFlags - 1
	if f == 0 {
		return "-"
	}
	if f&(f-1) == 0 {
		return flagNames[bitIndex(f)]
	}
	var buf [128]byte
	return string(f.AppendTo(buf[:0]))
}

// AppendTo appends the same text String returns to b and returns the
// extended buffer.
func (f ResponseFlags) AppendTo(b []byte) []byte {
	f &= 1<<numFlags - 1
	if f == 0 {
		return append(b, '-')
	}
	first := true
	for f != 0 {
		low := f & -f
		if !first {
			b = append(b, ',')
		}
		b = append(b, flagNames[bitIndex(low)]...)
		first = false
		f &^= low
	}
	return b
}

// Has reports whether every flag in g is set in f.
func (f ResponseFlags) Has(g ResponseFlags) bool { return f&g == g }

// bitIndex returns the position of the lowest set bit in f.
func bitIndex(f ResponseFlags) int { return bits.TrailingZeros32(uint32(f)) }
