// Package admin serves the operator's views: the admin API on
// 127.0.0.1:15000, readiness on 15021 and Prometheus stats on 15090. Every
// handler only reads the snapshot, upstream and telemetry state.
package admin

import (
	"encoding/json"
	"net/http"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// Server holds what the admin handlers read. Ready is set by the process
// once the first snapshot is loaded and every listener is bound.
type Server struct {
	Store   *snapshot.Store
	Metrics *telemetry.Metrics
	Ready   *atomic.Bool
	// Quit is called by /quitquitquit; nil means the endpoint answers 501.
	Quit func()
	// Drain is called by /drain_listeners; nil means 501.
	Drain func()
	// Upstream is the live cluster state /clusters shows; nil means 503.
	Upstream *upstream.Manager
	// Level is the process log level /logging reads and sets.
	Level zap.AtomicLevel
}

// AdminHandler is the admin API (Envoy's paths).
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config_dump", s.configDump)
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("GET /clusters", s.clusters)
	mux.Handle("GET /stats/prometheus", s.Metrics.Handler())
	mux.HandleFunc("POST /quitquitquit", s.call(func() func() { return s.Quit }))
	mux.HandleFunc("POST /drain_listeners", s.call(func() func() { return s.Drain }))
	mux.Handle("/logging", telemetry.LevelHandler(s.Level))
	registerPprof(mux)
	return mux
}

// HealthHandler serves /healthz/ready (port 15021).
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz/ready", s.ready)
	return mux
}

// StatsHandler serves /stats/prometheus (port 15090).
func (s *Server) StatsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /stats/prometheus", s.Metrics.Handler())
	return mux
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if s.Ready.Load() && s.Store.Load() != nil {
		w.Write([]byte("LIVE\n"))
		return
	}
	http.Error(w, "PRE_INITIALIZING", http.StatusServiceUnavailable)
}

func (s *Server) call(get func() func()) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		f := get()
		if f == nil {
			http.Error(w, "not supported", http.StatusNotImplemented)
			return
		}
		w.Write([]byte("OK\n"))
		go f()
	}
}

// dumpCluster is one compiled cluster in /config_dump.
type dumpCluster struct {
	Name      string              `json:"name"`
	Service   string              `json:"service"`
	Port      uint32              `json:"port"`
	Subset    string              `json:"subset,omitempty"`
	Endpoints []snapshot.Endpoint `json:"endpoints"`
	Policy    snapshot.Policy     `json:"policy"`
	Effective upstream.Settings   `json:"effective"`
}

// dumpVirtualHost is one compiled virtual host and its routes in match
// order.
type dumpVirtualHost struct {
	Name            string      `json:"name"`
	Domains         []string    `json:"domains"`
	VirtualServices []string    `json:"virtual_services,omitempty"`
	Routes          []dumpRoute `json:"routes"`
}

type dumpRoute struct {
	Name           string            `json:"name,omitempty"`
	VirtualService string            `json:"virtual_service,omitempty"`
	Rule           int               `json:"rule"`
	Clusters       map[string]uint32 `json:"weighted_clusters,omitempty"`
	Redirect       bool              `json:"redirect,omitempty"`
	DirectResponse int               `json:"direct_response,omitempty"`
	Timeout        string            `json:"timeout,omitempty"`
	Retries        string            `json:"retry_on,omitempty"`
	Attempts       int               `json:"num_retries,omitempty"`
	Fault          bool              `json:"fault,omitempty"`
	Mirrors        []string          `json:"mirrors,omitempty"`
}

func dumpRoutes(t *routing.Table) []dumpVirtualHost {
	var out []dumpVirtualHost
	for _, vh := range t.VirtualHosts() {
		dv := dumpVirtualHost{Name: vh.Name, Domains: vh.Domains, VirtualServices: vh.VirtualServices}
		for _, rt := range vh.Routes() {
			dr := dumpRoute{Name: rt.Name, VirtualService: rt.VirtualService, Rule: rt.Rule,
				Redirect: rt.Redirect != nil, Fault: rt.Fault != nil}
			if rt.DirectResponse != nil {
				dr.DirectResponse = rt.DirectResponse.Status
			}
			if rt.Timeout > 0 {
				dr.Timeout = rt.Timeout.String()
			}
			if rt.Retry != nil {
				dr.Retries, dr.Attempts = rt.Retry.On.String(), rt.Retry.Attempts
			}
			for _, d := range rt.Destinations {
				if dr.Clusters == nil {
					dr.Clusters = map[string]uint32{}
				}
				dr.Clusters[d.Cluster] = d.Weight
			}
			for _, m := range rt.Mirrors {
				dr.Mirrors = append(dr.Mirrors, m.Cluster)
			}
			dv.Routes = append(dv.Routes, dr)
		}
		out = append(out, dv)
	}
	return out
}

// configDump is the loaded resources, the compiled routes and the
// compiled clusters with their effective settings, as JSON.
func (s *Server) configDump(w http.ResponseWriter, _ *http.Request) {
	snap := s.Store.Load()
	if snap == nil {
		http.Error(w, "no config loaded yet", http.StatusServiceUnavailable)
		return
	}
	dump := struct {
		Version   uint64                `json:"version"`
		Loaded    string                `json:"loaded"`
		Outbound  snapshot.OutboundMode `json:"outboundTrafficPolicy"`
		Resources any                   `json:"resources"`
		Routes    []dumpVirtualHost     `json:"routes"`
		Clusters  []dumpCluster         `json:"clusters"`
		Warnings  []string              `json:"warnings,omitempty"`
	}{Version: snap.Version, Loaded: snap.Loaded.UTC().Format("2006-01-02T15:04:05.000Z"), Outbound: snap.Outbound,
		Resources: snap.Set, Routes: dumpRoutes(snap.Routes)}
	for _, n := range snap.ClusterNames() {
		c := snap.Clusters[n]
		dump.Clusters = append(dump.Clusters, dumpCluster{c.Name, c.Service.Host, c.Port.Number, c.Subset, c.Endpoints, c.Policy, upstream.Describe(c)})
	}
	for _, d := range snap.Diags {
		if d.Severity >= 1 {
			dump.Warnings = append(dump.Warnings, d.String())
		}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(dump)
}
