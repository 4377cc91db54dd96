package routing

import (
	"fmt"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/config"
)

// RetryOn is a set of Envoy retry_on conditions.
type RetryOn uint32

// Envoy's retry_on conditions.
const (
	Retry5xx RetryOn = 1 << iota
	RetryGatewayError
	RetryReset
	RetryResetBeforeRequest
	RetryConnectFailure
	RetryEnvoyRatelimited
	RetryRetriable4xx
	RetryRefusedStream
	RetryRetriableStatusCodes
	RetryRetriableHeaders
	RetryHTTP3PostConnectFailure
	RetryGRPCCancelled
	RetryGRPCDeadlineExceeded
	RetryGRPCInternal
	RetryGRPCResourceExhausted
	RetryGRPCUnavailable
)

// retryTokens maps retryOn tokens to their bits.
var retryTokens = map[string]RetryOn{
	"5xx": Retry5xx, "gateway-error": RetryGatewayError, "reset": RetryReset,
	"reset-before-request": RetryResetBeforeRequest, "connect-failure": RetryConnectFailure,
	"envoy-ratelimited": RetryEnvoyRatelimited, "retriable-4xx": RetryRetriable4xx,
	"refused-stream": RetryRefusedStream, "retriable-status-codes": RetryRetriableStatusCodes,
	"retriable-headers": RetryRetriableHeaders, "http3-post-connect-failure": RetryHTTP3PostConnectFailure,
	"cancelled": RetryGRPCCancelled, "deadline-exceeded": RetryGRPCDeadlineExceeded,
	"internal": RetryGRPCInternal, "resource-exhausted": RetryGRPCResourceExhausted,
	"unavailable": RetryGRPCUnavailable,
}

// DefaultRetryOn is Istio's retry_on when a rule sets no retries (or no
// retryOn).
const DefaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"

// Envoy's back-off defaults.
const (
	DefaultBackoff       = 25 * time.Millisecond
	hostSelectionRetries = 5
)

// FailureKind says how an upstream attempt failed when it produced no
// response.
type FailureKind uint8

const (
	// FailureNone means a response arrived; its status decides.
	FailureNone FailureKind = iota
	// FailureConnect means no connection could be made.
	FailureConnect
	// FailureRefusedStream means the upstream refused the HTTP/2 stream.
	FailureRefusedStream
	// FailureResetBeforeRequest means the connection reset before the
	// request was fully sent.
	FailureResetBeforeRequest
	// FailureReset means a disconnect, reset or read timeout after the
	// request was sent, before response headers.
	FailureReset
	// FailurePerTryTimeout means the per-try timeout expired.
	FailurePerTryTimeout
)

// RetryPolicy is a compiled HTTPRetry. It is immutable.
type RetryPolicy struct {
	// Attempts is the number of retries (Envoy num_retries); the request
	// is tried at most 1+Attempts times.
	Attempts int
	// On is the set of conditions that allow a retry.
	On RetryOn
	// StatusCodes are the retriable status codes (with
	// RetryRetriableStatusCodes).
	StatusCodes []int
	// PerTryTimeout bounds each attempt; zero means the route timeout.
	PerTryTimeout time.Duration
	// BaseInterval and MaxInterval bound the fully jittered back-off.
	BaseInterval, MaxInterval time.Duration
	// IgnorePreviousHosts prefers an endpoint not tried before
	// (previous_hosts predicate); the caller drops it for routes using
	// consistent hashing when the policy is Istio's default.
	IgnorePreviousHosts bool
	// HostSelectionAttempts is how often to re-pick to avoid a previous
	// host (5).
	HostSelectionAttempts int
	// RemoteLocalities prefers other localities on retry.
	RemoteLocalities bool
}

// DefaultRetryPolicy is Istio's policy for rules without retries: 2
// retries on DefaultRetryOn (no 503), 25ms base back-off, preferring
// another endpoint. It must not be modified.
var DefaultRetryPolicy = mustRetry(&config.HTTPRetry{Attempts: 2})

func mustRetry(r *config.HTTPRetry) *RetryPolicy {
	p, err := compilePolicy(r)
	if err != nil {
		panic(err)
	}
	return p
}

// compileRetry compiles r; nil means the default policy, Attempts 0 means
// no retries (nil policy).
func compileRetry(r *config.HTTPRetry) (*RetryPolicy, error) {
	if r == nil {
		return DefaultRetryPolicy, nil
	}
	if r.Attempts <= 0 {
		return nil, nil
	}
	return compilePolicy(r)
}

// compilePolicy compiles r, which has Attempts > 0.
func compilePolicy(r *config.HTTPRetry) (*RetryPolicy, error) {
	p := &RetryPolicy{
		Attempts:              int(r.Attempts),
		PerTryTimeout:         r.PerTryTimeout.D(0),
		BaseInterval:          r.Backoff.D(DefaultBackoff),
		IgnorePreviousHosts:   r.RetryIgnorePreviousHosts == nil || *r.RetryIgnorePreviousHosts,
		HostSelectionAttempts: hostSelectionRetries,
		RemoteLocalities:      r.RetryRemoteLocalities != nil && *r.RetryRemoteLocalities,
	}
	if p.BaseInterval <= 0 {
		p.BaseInterval = DefaultBackoff
	}
	p.MaxInterval = 10 * p.BaseInterval
	on := r.RetryOn
	if on == "" {
		on = DefaultRetryOn
	}
	for _, tok := range strings.Split(on, ",") {
		if b, ok := retryTokens[tok]; ok {
			p.On |= b
			continue
		}
		code, err := strconv.Atoi(tok)
		if err != nil || http.StatusText(code) == "" {
			return nil, fmt.Errorf("retryOn: unknown condition %q", tok)
		}
		p.StatusCodes = append(p.StatusCodes, code)
		p.On |= RetryRetriableStatusCodes
	}
	return p, nil
}

// String renders the set as Envoy's comma-separated retry_on.
func (on RetryOn) String() string {
	var parts []string
	for bit := RetryOn(1); bit != 0 && bit <= RetryGRPCUnavailable; bit <<= 1 {
		if on&bit == 0 {
			continue
		}
		for k, v := range retryTokens {
			if v == bit {
				parts = append(parts, k)
			}
		}
	}
	return strings.Join(parts, ",")
}

// resetRetry holds, per failure kind, the conditions that retry it.
var resetRetry = [...]RetryOn{
	FailureConnect:            RetryConnectFailure | Retry5xx | RetryGatewayError | RetryReset | RetryResetBeforeRequest,
	FailureRefusedStream:      RetryRefusedStream | Retry5xx | RetryGatewayError | RetryReset,
	FailureResetBeforeRequest: RetryResetBeforeRequest | Retry5xx | RetryGatewayError | RetryReset,
	FailureReset:              Retry5xx | RetryGatewayError | RetryReset,
	FailurePerTryTimeout:      Retry5xx | RetryGatewayError | RetryReset,
}

// grpcRetry maps numeric grpc-status values to their conditions.
var grpcRetry = map[string]RetryOn{
	"1": RetryGRPCCancelled, "4": RetryGRPCDeadlineExceeded, "8": RetryGRPCResourceExhausted,
	"13": RetryGRPCInternal, "14": RetryGRPCUnavailable,
}

// ShouldRetry reports whether an attempt that failed with kind, or (for
// FailureNone) answered status with response-header grpc-status grpcStatus
// ("" when absent), may be retried under p. A nil p never retries. The
// caller still enforces Attempts, the route timeout and the rule that
// nothing is retried once response headers went downstream.
func (p *RetryPolicy) ShouldRetry(status int, grpcStatus string, kind FailureKind) bool {
	if p == nil {
		return false
	}
	if kind != FailureNone {
		return int(kind) < len(resetRetry) && p.On&resetRetry[kind] != 0
	}
	switch {
	case p.On&Retry5xx != 0 && status >= 500 && status <= 599:
		return true
	case p.On&RetryGatewayError != 0 && (status == 502 || status == 503 || status == 504):
		return true
	case p.On&RetryRetriable4xx != 0 && status == 409:
		return true
	}
	if p.On&RetryRetriableStatusCodes != 0 {
		for _, c := range p.StatusCodes {
			if c == status {
				return true
			}
		}
	}
	if grpcStatus != "" {
		return p.On&grpcRetry[grpcStatus] != 0
	}
	return false
}

// Backoff returns the wait before retry n (1 for the first retry): fully
// jittered, uniform in [0, (2^n-1)·BaseInterval), capped at MaxInterval,
// from a uniformly random r.
func (p *RetryPolicy) Backoff(n int, r uint64) time.Duration {
	if p == nil || n < 1 {
		return 0
	}
	limit := p.MaxInterval
	if n < 32 {
		if l := time.Duration(1<<n-1) * p.BaseInterval; l < limit {
			limit = l
		}
	}
	if limit <= 0 {
		return 0
	}
	x, _ := bits.Mul64(r, uint64(limit))
	return time.Duration(x)
}
