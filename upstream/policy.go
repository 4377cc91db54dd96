package upstream

import (
	"net"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/lb"
	"github.com/remora-mesh/remora/outlier"
	"github.com/remora-mesh/remora/snapshot"
)

// Limits are a cluster's circuit-breaker thresholds, cluster-wide in this
// process, with Istio's defaults filled in.
type Limits struct {
	// MaxConnections is tcp.maxConnections: connections open or opening.
	MaxConnections int64 `json:"max_connections"`
	// MaxPendingRequests is http.http1MaxPendingRequests: requests
	// waiting for a connection.
	MaxPendingRequests int64 `json:"max_pending_requests"`
	// MaxRequests is http.http2MaxRequests: requests in flight (HTTP/1
	// and HTTP/2).
	MaxRequests int64 `json:"max_requests"`
	// MaxRetries is http.maxRetries: retries in flight.
	MaxRetries int64 `json:"max_retries"`
	// MaxRequestsPerConnection is http.maxRequestsPerConnection; zero
	// means unlimited, 1 disables keep-alive.
	MaxRequestsPerConnection int64 `json:"max_requests_per_connection,omitempty"`
}

// settings are one cluster's effective policy, immutable; Update swaps in
// a new one.
type settings struct {
	http2      bool          // upstream speaks HTTP/2 with prior knowledge
	origDst    bool          // connect to AttemptOptions.Original
	dns        bool          // endpoints are host names to resolve
	logicalDNS bool          // DNS_ROUND_ROBIN: first address only
	connect    time.Duration // tcp.connectTimeout
	idle       time.Duration // pool idle timeout; zero disables
	limits     Limits
	keepAlive  *net.KeepAliveConfig // nil: SO_KEEPALIVE off
	lb         lb.Config
	outlier    *outlier.Config // nil: no outlier detection
	tls        *tlsPolicy      // nil: plaintext
	tlsErr     error           // a TLS config that could not load: fail dials
	host       string          // the service host, the TCP default SNI
}

// unlimited is every breaker open wide, Istio's default thresholds.
func unlimited() Limits {
	return Limits{MaxConnections: Unlimited, MaxPendingRequests: Unlimited, MaxRequests: Unlimited, MaxRetries: Unlimited}
}

func passthroughSettings() *settings {
	return &settings{origDst: true, connect: DefaultConnectTimeout, idle: PassthroughIdleTimeout, limits: unlimited()}
}

// settingsFor computes sc's effective policy with Istio's defaults.
func settingsFor(sc *snapshot.Cluster, rnd func() uint64) *settings {
	s := &settings{connect: DefaultConnectTimeout, idle: DefaultIdleTimeout, limits: unlimited()}
	if sc.Service != nil {
		s.host = sc.Service.Host
		switch sc.Service.Resolution {
		case "NONE", "":
			s.origDst = true
		case "DNS", "DNS_ROUND_ROBIN":
			s.dns = true
			s.logicalDNS = sc.Service.Resolution == "DNS_ROUND_ROBIN"
		}
	}
	p := sc.Policy
	s.lb = lbConfig(p.LoadBalancer, rnd)
	if s.lb.Policy == lb.Passthrough {
		s.origDst = true
	}
	s.http2 = sc.Port.Protocol.IsHTTP2()
	applyPool(s, p.ConnectionPool, sc.Port.Protocol)
	s.outlier = outlierConfig(p.OutlierDetection)
	s.tls, s.tlsErr = newTLSPolicy(p.TLS, s.http2)
	return s
}

// applyPool fills s's limits and timeouts from connectionPool; values <= 0
// mean unset, as Istio cannot express 0.
func applyPool(s *settings, cp *config.ConnectionPoolSettings, proto config.Protocol) {
	if cp == nil {
		return
	}
	if t := cp.TCP; t != nil {
		setLimit(&s.limits.MaxConnections, t.MaxConnections)
		if t.ConnectTimeout != nil && t.ConnectTimeout.Duration > 0 {
			s.connect = t.ConnectTimeout.Duration
		}
		if t.IdleTimeout != nil {
			s.idle = t.IdleTimeout.Duration
		}
		s.keepAlive = keepAlive(t.TCPKeepalive)
	}
	if h := cp.HTTP; h != nil {
		setLimit(&s.limits.MaxPendingRequests, h.HTTP1MaxPendingRequests)
		setLimit(&s.limits.MaxRequests, h.HTTP2MaxRequests)
		setLimit(&s.limits.MaxRetries, h.MaxRetries)
		if h.MaxRequestsPerConnection > 0 {
			s.limits.MaxRequestsPerConnection = int64(h.MaxRequestsPerConnection)
		}
		if h.IdleTimeout != nil {
			s.idle = h.IdleTimeout.Duration
		}
		if h.H2UpgradePolicy == "UPGRADE" && (proto == config.HTTP || proto == config.Unknown) {
			s.http2 = true
		}
	}
}

func setLimit(dst *int64, v int32) {
	if v > 0 {
		*dst = int64(v)
	}
}

// keepAlive maps tcpKeepalive to SO_KEEPALIVE settings; unset fields keep
// the OS defaults (negative values in net.KeepAliveConfig).
func keepAlive(ka *config.TCPKeepalive) *net.KeepAliveConfig {
	if ka == nil {
		return nil
	}
	kc := &net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}
	if ka.Time != nil && ka.Time.Duration > 0 {
		kc.Idle = ka.Time.Duration
	}
	if ka.Interval != nil && ka.Interval.Duration > 0 {
		kc.Interval = ka.Interval.Duration
	}
	if ka.Probes > 0 {
		kc.Count = int(ka.Probes)
	}
	return kc
}

// lbConfig maps loadBalancer to a picker config: LEAST_REQUEST by default
// (LEAST_CONN is its alias), consistentHash to ring hash (minimum ring size
// 1024 unless set) or maglev.
func lbConfig(l *config.LoadBalancerSettings, rnd func() uint64) lb.Config {
	cfg := lb.Config{Policy: lb.LeastRequest, Rand: rnd}
	if l == nil {
		return cfg
	}
	if ch := l.ConsistentHash; ch != nil {
		if ch.Maglev != nil {
			cfg.Policy = lb.Maglev
			cfg.MaglevTableSize = ch.Maglev.TableSize
			return cfg
		}
		cfg.Policy = lb.RingHash
		cfg.MinimumRingSize = lb.DefaultMinimumRingSize
		if ch.RingHash != nil && ch.RingHash.MinimumRingSize > 0 {
			cfg.MinimumRingSize = ch.RingHash.MinimumRingSize
		} else if ch.MinimumRingSize > 0 {
			cfg.MinimumRingSize = ch.MinimumRingSize
		}
		return cfg
	}
	switch l.Simple {
	case "ROUND_ROBIN":
		cfg.Policy = lb.RoundRobin
	case "RANDOM":
		cfg.Policy = lb.Random
	case "PASSTHROUGH":
		cfg.Policy = lb.Passthrough
	}
	return cfg
}

// outlierConfig maps outlierDetection to the detector's config; nil (no
// block) means no outlier detection. Any block turns on 5 consecutive 5xx;
// the deprecated consecutiveErrors is ignored.
func outlierConfig(od *config.OutlierDetection) *outlier.Config {
	if od == nil {
		return nil
	}
	cfg := outlier.DefaultConfig()
	if od.Consecutive5xxErrors != nil {
		cfg.Consecutive5xxErrors = *od.Consecutive5xxErrors
	}
	if od.ConsecutiveGatewayErrors != nil {
		cfg.ConsecutiveGatewayErrors = *od.ConsecutiveGatewayErrors
	}
	cfg.SplitExternalLocalOriginErrors = od.SplitExternalLocalOriginErrors
	if od.ConsecutiveLocalOriginFailures != nil {
		cfg.ConsecutiveLocalOriginFailures = *od.ConsecutiveLocalOriginFailures
	}
	if od.Interval != nil && od.Interval.Duration > 0 {
		cfg.Interval = od.Interval.Duration
	}
	if od.BaseEjectionTime != nil && od.BaseEjectionTime.Duration > 0 {
		cfg.BaseEjectionTime = od.BaseEjectionTime.Duration
		cfg.MaxEjectionTime = max(outlier.DefaultMaxEjectionTime, cfg.BaseEjectionTime)
	}
	if od.MaxEjectionPercent > 0 {
		cfg.MaxEjectionPercent = float64(min(od.MaxEjectionPercent, 100))
	}
	if od.MinHealthPercent > 0 {
		cfg.MinHealthPercent = float64(od.MinHealthPercent)
	}
	return &cfg
}
