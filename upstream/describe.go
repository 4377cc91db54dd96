package upstream

import (
	"github.com/remora-mesh/remora/snapshot"
)

// Settings is a cluster's effective policy with Istio's defaults filled
// in, as `remora explain` and the config dump show it. Durations are Go
// text ("10s"); "0s" means disabled.
type Settings struct {
	LB                  string          `json:"lb_policy"`
	Limits              Limits          `json:"circuit_breakers"`
	ConnectTimeout      string          `json:"connect_timeout"`
	IdleTimeout         string          `json:"idle_timeout"`
	HTTP2               bool            `json:"http2,omitempty"`
	OriginalDestination bool            `json:"original_destination,omitempty"`
	DNS                 bool            `json:"dns,omitempty"`
	TLS                 string          `json:"tls_mode,omitempty"`
	Outlier             *OutlierSummary `json:"outlier_detection,omitempty"`
}

// OutlierSummary is the outlier detection a cluster applies.
type OutlierSummary struct {
	Consecutive5xxErrors           uint32  `json:"consecutive_5xx"`
	ConsecutiveGatewayErrors       uint32  `json:"consecutive_gateway_failure"`
	ConsecutiveLocalOriginFailures uint32  `json:"consecutive_local_origin_failure,omitempty"`
	SplitLocalOrigin               bool    `json:"split_external_local_origin_errors,omitempty"`
	Interval                       string  `json:"interval"`
	BaseEjectionTime               string  `json:"base_ejection_time"`
	MaxEjectionPercent             float64 `json:"max_ejection_percent"`
	MinHealthPercent               float64 `json:"min_health_percent"`
}

// Describe computes sc's effective settings without opening a connection
// or resolving a name.
func Describe(sc *snapshot.Cluster) Settings {
	s := settingsFor(sc, nil)
	d := Settings{LB: s.lb.Policy.String(), Limits: s.limits, ConnectTimeout: s.connect.String(),
		IdleTimeout: s.idle.String(), HTTP2: s.http2, OriginalDestination: s.origDst, DNS: s.dns}
	if sc.Policy.TLS != nil {
		d.TLS = string(sc.Policy.TLS.Mode)
	}
	if o := s.outlier; o != nil {
		d.Outlier = &OutlierSummary{Consecutive5xxErrors: o.Consecutive5xxErrors, ConsecutiveGatewayErrors: o.ConsecutiveGatewayErrors,
			ConsecutiveLocalOriginFailures: o.ConsecutiveLocalOriginFailures, SplitLocalOrigin: o.SplitExternalLocalOriginErrors,
			Interval: o.Interval.String(), BaseEjectionTime: o.BaseEjectionTime.String(),
			MaxEjectionPercent: o.MaxEjectionPercent, MinHealthPercent: o.MinHealthPercent}
	}
	return d
}
