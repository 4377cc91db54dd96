package admin

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/remora-mesh/remora/upstream"
)

// clusters is Envoy's /clusters: one line per cluster setting and per host
// stat in text form, or {"cluster_statuses": [...]} with ?format=json.
func (s *Server) clusters(w http.ResponseWriter, r *http.Request) {
	if s.Upstream == nil {
		http.Error(w, "no upstream state", http.StatusServiceUnavailable)
		return
	}
	st := s.Upstream.Status()
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Clusters []upstream.ClusterStatus `json:"cluster_statuses"`
		}{st})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	bw := bufio.NewWriter(w)
	for i := range st {
		writeClusterText(bw, &st[i])
	}
	_ = bw.Flush()
}

// writeClusterText writes one cluster in Envoy's text form:
// NAME::default_priority::max_connections::N, then
// NAME::ADDR::STAT::VALUE for each host.
func writeClusterText(w *bufio.Writer, c *upstream.ClusterStatus) {
	line := func(parts ...string) {
		w.WriteString(c.Name)
		for _, p := range parts {
			w.WriteString("::")
			w.WriteString(p)
		}
		w.WriteByte('\n')
	}
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	line("default_priority", "max_connections", i(c.Limits.MaxConnections))
	line("default_priority", "max_pending_requests", i(c.Limits.MaxPendingRequests))
	line("default_priority", "max_requests", i(c.Limits.MaxRequests))
	line("default_priority", "max_retries", i(c.Limits.MaxRetries))
	line("added_via_api", "true")
	for _, h := range c.Hosts {
		a := h.Address
		line(a, "cx_active", i(h.CxActive))
		line(a, "cx_connect_fail", u(h.CxConnectFail))
		line(a, "cx_total", u(h.CxTotal))
		line(a, "rq_active", i(h.RqActive))
		line(a, "rq_error", u(h.RqError))
		line(a, "rq_timeout", u(h.RqTimeout))
		line(a, "rq_total", u(h.RqTotal))
		line(a, "hostname", "")
		line(a, "health_flags", h.Health)
		line(a, "weight", strconv.FormatUint(uint64(h.Weight), 10))
		line(a, "ejections", strconv.FormatUint(uint64(h.Ejections), 10))
	}
}
