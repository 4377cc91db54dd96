// Package telemetry holds Istio's standard metrics, remora's own metrics,
// and the access log. Metric and label names are spelled here once.
package telemetry

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one process's metric registry. It is safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry
	// ConfigReloads counts config loads by result ("success" or "error").
	ConfigReloads *prometheus.CounterVec
}

// NewMetrics returns a registry with remora's metrics and the Go runtime
// and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.ConfigReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "remora_config_reloads_total",
		Help: "Config loads, by result (success or error).",
	}, []string{"result"})
	m.ConfigReloads.WithLabelValues("success")
	m.ConfigReloads.WithLabelValues("error")
	m.Registry.MustRegister(m.ConfigReloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
