package routing

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/fault"
)

// PerMillion is Envoy's FractionalPercent denominator: Istio encodes a
// percentage value v as v×10000 parts per million.
const PerMillion = 1_000_000

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

// compileFault compiles f into the fault package's policy: percentage
// value, or the legacy integer delay.percent only when percentage is
// absent; neither means the fault never fires. nil gives nil.
func compileFault(f *config.HTTPFaultInjection) *fault.Policy {
	if f == nil || f.Delay == nil && f.Abort == nil {
		return nil
	}
	p := &fault.Policy{}
	if d := f.Delay; d != nil && d.FixedDelay != nil {
		p.Delay.Fixed = d.FixedDelay.Duration
		switch {
		case d.Percentage != nil:
			p.Delay.Percent = d.Percentage.Value
		case d.Percent != nil:
			p.Delay.Percent = float64(*d.Percent)
		}
	}
	if a := f.Abort; a != nil {
		if a.Percentage != nil {
			p.Abort.Percent = a.Percentage.Value
		}
		if a.HTTPStatus != nil {
			p.Abort.HTTPStatus = int(*a.HTTPStatus)
		} else if c, ok := config.GRPCCodes[a.GRPCStatus]; ok {
			p.Abort.GRPCStatus, p.Abort.HasGRPCStatus = c, true
		}
	}
	return p
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
