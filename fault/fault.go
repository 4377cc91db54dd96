// Package fault decides, per request, whether an Istio HTTPFaultInjection
// delays or aborts it, with Envoy's fault filter semantics: the delay and the
// abort are independent coin flips, both may fire (delay, then abort), and a
// percentage of zero never fires. Randomness is an input, so tests are
// deterministic. The package is pure: no sockets, no net/http.
package fault

import (
	"math"
	"math/rand/v2"
	"time"
)

// AbortBody is the body of an aborted request's local reply, and the
// grpc-message of a gRPC one (18 bytes, content-type text/plain).
const AbortBody = "fault filter abort"

// million is Envoy's FractionalPercent MILLION denominator: Istio encodes
// percentage.value as value×10000 parts per million.
const million = 1_000_000

// Policy is one route's fault injection. The zero value injects nothing.
// A Policy is immutable once built and safe for concurrent use.
type Policy struct {
	Delay Delay
	Abort Abort
}

// Delay holds the request for a fixed time before it is routed. The wait is
// not counted in the route timeout and is never retried.
type Delay struct {
	// Fixed is the delay; zero means no delay.
	Fixed time.Duration

	// Percent is the chance, 0..100, that a request is delayed, with
	// Envoy's 0.0001 resolution. Zero (the field absent in Istio) never
	// fires. The deprecated integer delay.percent, used only when
	// percentage is absent, is the same number: pass float64(percent).
	Percent float64
}

// Abort answers the request locally instead of routing it.
type Abort struct {
	// HTTPStatus is the status to answer with, 200..599. Zero means the
	// abort uses GRPCStatus, or does nothing if that is unset too.
	HTTPStatus int

	// GRPCStatus, if HasGRPCStatus, is the numeric gRPC status code to
	// answer with in a trailers-only response (:status 200), as Envoy does
	// for abort.grpcStatus (config.GRPCCodes maps Istio's names).
	GRPCStatus    int
	HasGRPCStatus bool

	// Percent is the chance, 0..100, that a request is aborted; zero never
	// fires.
	Percent float64
}

// Decision is what to do with one request. The zero value is "no fault".
type Decision struct {
	// Delay is how long to hold the request first; zero means no delay.
	Delay time.Duration

	// Aborted reports that the request is answered locally, after Delay,
	// with HTTPStatus, or with GRPCStatus when IsGRPC.
	Aborted    bool
	HTTPStatus int
	GRPCStatus int
	IsGRPC     bool
}

// Delayed reports whether the decision delays the request (flag DI).
func (d Decision) Delayed() bool { return d.Delay > 0 }

// Active reports whether the policy can ever delay or abort a request.
func (p *Policy) Active() bool { return p.delays() || p.aborts() }

func (p *Policy) delays() bool { return p.Delay.Fixed > 0 && p.Delay.Percent > 0 }

func (p *Policy) aborts() bool {
	return (p.Abort.HTTPStatus != 0 || p.Abort.HasGRPCStatus) && p.Abort.Percent > 0
}

// Decide flips the delay coin, then the abort coin, each with its own draw
// from rnd, as Envoy's fault filter does. rnd returns uniformly random
// 64-bit values; nil means math/rand/v2's Uint64. A nil Policy injects
// nothing. Decide does not allocate, and is safe for concurrent use if rnd is.
func (p *Policy) Decide(rnd func() uint64) Decision {
	var d Decision
	if p == nil {
		return d
	}
	if rnd == nil {
		rnd = rand.Uint64
	}
	if p.delays() && fires(p.Delay.Percent, rnd()) {
		d.Delay = p.Delay.Fixed
	}
	if p.aborts() && fires(p.Abort.Percent, rnd()) {
		d.Aborted = true
		if p.Abort.HTTPStatus != 0 {
			d.HTTPStatus = p.Abort.HTTPStatus
		} else {
			d.GRPCStatus, d.IsGRPC = p.Abort.GRPCStatus, true
		}
	}
	return d
}

// fires reports whether a draw r falls within percent, using Envoy's
// parts-per-million: r mod 1e6 < round(percent×10000).
func fires(percent float64, r uint64) bool {
	n := uint64(math.Round(min(percent, 100) * 10000))
	return r%million < n
}
