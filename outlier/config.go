package outlier

import "time"

// Envoy's defaults for the fields Istio leaves unset.
const (
	DefaultConsecutive5xxErrors           = 5
	DefaultConsecutiveLocalOriginFailures = 5
	DefaultInterval                       = 10 * time.Second
	DefaultBaseEjectionTime               = 30 * time.Second
	DefaultMaxEjectionTime                = 300 * time.Second
	DefaultMaxEjectionPercent             = 10
)

// Config is one cluster's outlierDetection, as Istio maps it onto Envoy.
// The zero value detects nothing (every threshold disabled) but has Envoy's
// timing defaults; DefaultConfig is what an empty outlierDetection block
// means. A Config is plain data.
type Config struct {
	// Consecutive5xxErrors ejects an endpoint after this many 5xx answers
	// in a row (and, unless SplitExternalLocalOriginErrors, local-origin
	// failures, which count as 503 or 504). Zero disables it; Istio's
	// absent field means DefaultConsecutive5xxErrors.
	Consecutive5xxErrors uint32

	// ConsecutiveGatewayErrors ejects after this many 502, 503 or 504
	// answers in a row (local-origin failures count too unless split).
	// Zero disables it, as when Istio's field is absent.
	ConsecutiveGatewayErrors uint32

	// SplitExternalLocalOriginErrors counts local-origin failures
	// (connect failure, reset, timeout) apart from upstream answers, against
	// ConsecutiveLocalOriginFailures instead of the 5xx and gateway counts.
	SplitExternalLocalOriginErrors bool

	// ConsecutiveLocalOriginFailures ejects after this many local-origin
	// failures in a row; read only when SplitExternalLocalOriginErrors.
	// Zero disables it; Istio's absent field means
	// DefaultConsecutiveLocalOriginFailures.
	ConsecutiveLocalOriginFailures uint32

	// Interval is how often Sweep should run; zero means DefaultInterval.
	Interval time.Duration

	// BaseEjectionTime is the ejection time per ejection multiplier step;
	// zero means DefaultBaseEjectionTime.
	BaseEjectionTime time.Duration

	// MaxEjectionTime caps one ejection; zero means DefaultMaxEjectionTime,
	// or BaseEjectionTime if that is larger (Envoy's rule; Istio has no
	// field for it).
	MaxEjectionTime time.Duration

	// MaxEjectionPercent caps the share of endpoints ejected at once: an
	// ejection is refused unless (ejected+1)/endpoints ≤ this percent.
	// Zero means DefaultMaxEjectionPercent (Istio sends only values > 0);
	// values above 100 mean 100. With the default 10%, clusters of fewer
	// than 10 endpoints eject nothing, as in current Envoy.
	MaxEjectionPercent float64

	// AlwaysEjectOneHost allows one ejection even when MaxEjectionPercent
	// would refuse it (Envoy's always_eject_one_host; Istio never sets it).
	AlwaysEjectOneHost bool

	// MinHealthPercent is the cluster's panic threshold, for the load
	// balancer (lb.Available): below this healthy share, ejected endpoints
	// take traffic again. Zero, Istio's default, disables panic. The
	// Detector itself does not read it.
	MinHealthPercent float64
}

// DefaultConfig returns what an outlierDetection block with no fields
// means under Istio: 5 consecutive 5xx, interval 10s, base ejection 30s,
// max ejection 10%, no panic threshold.
func DefaultConfig() Config {
	return Config{
		Consecutive5xxErrors:           DefaultConsecutive5xxErrors,
		ConsecutiveLocalOriginFailures: DefaultConsecutiveLocalOriginFailures,
	}.withDefaults()
}

// withDefaults returns c with zero durations and percent replaced by
// Envoy's defaults.
func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.BaseEjectionTime <= 0 {
		c.BaseEjectionTime = DefaultBaseEjectionTime
	}
	if c.MaxEjectionTime <= 0 {
		c.MaxEjectionTime = max(DefaultMaxEjectionTime, c.BaseEjectionTime)
	}
	if c.MaxEjectionPercent <= 0 {
		c.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	c.MaxEjectionPercent = min(c.MaxEjectionPercent, 100)
	return c
}
