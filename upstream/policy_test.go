package upstream

import (
	"net"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/lb"
	"github.com/remora-mesh/remora/snapshot"
)

func TestSettingsDefaults(t *testing.T) {
	s := settingsFor(snap(t, config.HTTP, snapshot.Policy{}, "127.0.0.1:1").Clusters[clusterName("")], nil)
	want := Limits{MaxConnections: Unlimited, MaxPendingRequests: Unlimited, MaxRequests: Unlimited, MaxRetries: Unlimited}
	if s.limits != want || s.connect != 10*time.Second || s.idle != DefaultIdleTimeout || s.lb.Policy != lb.LeastRequest ||
		s.outlier != nil || s.keepAlive != nil || s.tls != nil || s.http2 || s.origDst {
		t.Errorf("defaults = %+v", s)
	}
}

func TestSettingsMapping(t *testing.T) {
	tests := []struct {
		name  string
		pol   snapshot.Policy
		check func(*settings) bool
	}{
		{"least conn alias", snapshot.Policy{LoadBalancer: &config.LoadBalancerSettings{Simple: "LEAST_CONN"}},
			func(s *settings) bool { return s.lb.Policy == lb.LeastRequest }},
		{"round robin", snapshot.Policy{LoadBalancer: &config.LoadBalancerSettings{Simple: "ROUND_ROBIN"}},
			func(s *settings) bool { return s.lb.Policy == lb.RoundRobin }},
		{"consistent hash ring 1024", snapshot.Policy{LoadBalancer: &config.LoadBalancerSettings{ConsistentHash: &config.ConsistentHashLB{UseSourceIP: true}}},
			func(s *settings) bool { return s.lb.Policy == lb.RingHash && s.lb.MinimumRingSize == 1024 }},
		{"maglev", snapshot.Policy{LoadBalancer: &config.LoadBalancerSettings{ConsistentHash: &config.ConsistentHashLB{Maglev: &config.MagLev{}}}},
			func(s *settings) bool { return s.lb.Policy == lb.Maglev }},
		{"passthrough lb", snapshot.Policy{LoadBalancer: &config.LoadBalancerSettings{Simple: "PASSTHROUGH"}},
			func(s *settings) bool { return s.origDst }},
		{"negative limits are unset", snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{
			TCP: &config.TCPSettings{MaxConnections: -1}, HTTP: &config.HTTPSettings{HTTP2MaxRequests: 0, MaxRetries: 3}}},
			func(s *settings) bool {
				return s.limits.MaxConnections == Unlimited && s.limits.MaxRequests == Unlimited && s.limits.MaxRetries == 3
			}},
		{"tcp idle timeout", snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{TCP: &config.TCPSettings{IdleTimeout: dur(time.Minute)}}},
			func(s *settings) bool { return s.idle == time.Minute }},
		{"keepalive", snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{TCP: &config.TCPSettings{
			TCPKeepalive: &config.TCPKeepalive{Probes: 3, Time: dur(time.Minute)}}}},
			func(s *settings) bool {
				return *s.keepAlive == net.KeepAliveConfig{Enable: true, Idle: time.Minute, Interval: -1, Count: 3}
			}},
		{"h2 upgrade", snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{HTTP: &config.HTTPSettings{H2UpgradePolicy: "UPGRADE"}}},
			func(s *settings) bool { return s.http2 }},
		{"empty outlier block", snapshot.Policy{OutlierDetection: &config.OutlierDetection{ConsecutiveErrors: 1}},
			func(s *settings) bool {
				o := s.outlier
				return o != nil && o.Consecutive5xxErrors == 5 && o.Interval == 10*time.Second &&
					o.BaseEjectionTime == 30*time.Second && o.MaxEjectionPercent == 10 && o.MinHealthPercent == 0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settingsFor(snap(t, config.HTTP, tt.pol, "127.0.0.1:1").Clusters[clusterName("")], nil)
			if !tt.check(s) {
				t.Errorf("settings = %+v", s)
			}
		})
	}
}
