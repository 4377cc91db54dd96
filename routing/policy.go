package routing

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/config"
)

// PerMillion is Envoy's FractionalPercent denominator: Istio encodes a
// percentage value v as v×10000 parts per million.
const PerMillion = 1_000_000

// Fault is a compiled HTTPFaultInjection. Delay and abort are independent
// coin flips; a zero chance never fires.
type Fault struct {
	// DelayPerMillion is the chance of a delay, in parts per million.
	DelayPerMillion uint32
	// Delay is the fixed delay.
	Delay time.Duration
	// AbortPerMillion is the chance of an abort, in parts per million.
	AbortPerMillion uint32
	// HTTPStatus is the abort status; zero when the abort is gRPC only.
	HTTPStatus int
	// GRPCStatus is the numeric gRPC abort status, or -1 when unset.
	GRPCStatus int
}

// grpcCodes are the gRPC status names Istio accepts for abort.grpcStatus.
var grpcCodes = map[string]int{
	"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
	"NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
	"FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
	"INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// perMillion converts an Istio percentage (0..100) to parts per million.
func perMillion(p *config.Percent) uint32 {
	if p == nil {
		return 0
	}
	v := math.Round(p.Value * 10000)
	switch {
	case v <= 0 || math.IsNaN(v):
		return 0
	case v >= PerMillion:
		return PerMillion
	}
	return uint32(v)
}

// compileFault compiles f; nil gives nil.
func compileFault(f *config.HTTPFaultInjection) *Fault {
	if f == nil || f.Delay == nil && f.Abort == nil {
		return nil
	}
	out := &Fault{GRPCStatus: -1}
	if d := f.Delay; d != nil && d.FixedDelay != nil {
		out.Delay = d.FixedDelay.Duration
		switch {
		case d.Percentage != nil:
			out.DelayPerMillion = perMillion(d.Percentage)
		case d.Percent != nil:
			out.DelayPerMillion = perMillion(&config.Percent{Value: float64(*d.Percent)})
		}
	}
	if a := f.Abort; a != nil {
		out.AbortPerMillion = perMillion(a.Percentage)
		if a.HTTPStatus != nil {
			out.HTTPStatus = int(*a.HTTPStatus)
		} else if c, ok := grpcCodes[a.GRPCStatus]; ok {
			out.GRPCStatus = c
		} else {
			out.AbortPerMillion = 0
		}
	}
	return out
}

// Mirror is one shadow destination of a route.
type Mirror struct {
	Destination
	// PerMillion is the share of requests mirrored, in parts per million
	// (100% when the config sets no percentage; never 0).
	PerMillion uint32
}

// CORS is a compiled CorsPolicy.
type CORS struct {
	origins []stringMatcher
	// AllowMethods, AllowHeaders and ExposeHeaders are the comma-joined
	// lists; MaxAge is in seconds ("" for none).
	AllowMethods, AllowHeaders, ExposeHeaders, MaxAge string
	// AllowCredentials adds access-control-allow-credentials: true.
	AllowCredentials bool
	// ForwardUnmatchedPreflights forwards preflights whose origin does
	// not match upstream (the default); false answers them locally
	// without CORS headers.
	ForwardUnmatchedPreflights bool
}

// compileCORS compiles c; nil gives nil.
func compileCORS(c *config.CorsPolicy) (*CORS, error) {
	if c == nil {
		return nil, nil
	}
	out := &CORS{
		AllowMethods:               strings.Join(c.AllowMethods, ","),
		AllowHeaders:               strings.Join(c.AllowHeaders, ","),
		ExposeHeaders:              strings.Join(c.ExposeHeaders, ","),
		AllowCredentials:           c.AllowCredentials != nil && *c.AllowCredentials,
		ForwardUnmatchedPreflights: c.UnmatchedPreflights != "IGNORE",
	}
	if c.MaxAge != nil {
		out.MaxAge = strconv.FormatInt(int64(c.MaxAge.Duration/time.Second), 10)
	}
	for i := range c.AllowOrigins {
		m, err := compileStringMatch(&c.AllowOrigins[i], false)
		if err != nil {
			return nil, err
		}
		out.origins = append(out.origins, m)
	}
	for _, o := range c.AllowOrigin {
		if o == "*" {
			out.origins = append(out.origins, stringMatcher{})
			continue
		}
		out.origins = append(out.origins, stringMatcher{kind: matchExact, s: o})
	}
	return out, nil
}

// AllowsOrigin reports whether origin matches one of the allowed origins.
func (c *CORS) AllowsOrigin(origin string) bool {
	if c == nil || origin == "" {
		return false
	}
	for i := range c.origins {
		if c.origins[i].match(origin) {
			return true
		}
	}
	return false
}

// IsPreflight reports whether req is a CORS preflight: OPTIONS with
// Origin and Access-Control-Request-Method.
func IsPreflight(req *Request) bool {
	if req.Method != http.MethodOptions {
		return false
	}
	_, o := req.Header["Origin"]
	_, m := req.Header["Access-Control-Request-Method"]
	return o && m
}

// PreflightHeaders writes the headers of Envoy's local 200 answer to a
// preflight from a matching origin.
func (c *CORS) PreflightHeaders(origin string, h http.Header) {
	h.Set("Access-Control-Allow-Origin", origin)
	setIf(h, "Access-Control-Allow-Methods", c.AllowMethods)
	setIf(h, "Access-Control-Allow-Headers", c.AllowHeaders)
	setIf(h, "Access-Control-Max-Age", c.MaxAge)
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// ResponseHeaders adds the CORS headers to the response of a simple
// (non-preflight) request from a matching origin.
func (c *CORS) ResponseHeaders(origin string, h http.Header) {
	h.Set("Access-Control-Allow-Origin", origin)
	setIf(h, "Access-Control-Expose-Headers", c.ExposeHeaders)
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

func setIf(h http.Header, k, v string) {
	if v != "" {
		h.Set(k, v)
	}
}
