package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

const host = "reviews.default.svc.cluster.local"

// cluster builds a one-cluster snapshot (subset v1) over addr with an
// outlier block that ejects after one 5xx.
func cluster(addr string) *snapshot.Snapshot {
	ap := netip.MustParseAddrPort(addr)
	port := snapshot.Port{Number: 9080, Name: "http", Protocol: config.HTTP}
	svc := &snapshot.Service{Host: host, Resolution: "STATIC", Ports: []snapshot.Port{port},
		Endpoints: []snapshot.Endpoint{{Address: ap.Addr().String(), Ports: map[string]uint32{"http": uint32(ap.Port())}}}}
	one := uint32(1)
	c := &snapshot.Cluster{Name: snapshot.ClusterName(9080, "v1", host), Service: svc, Port: port, Subset: "v1", Endpoints: svc.Endpoints,
		Policy: snapshot.Policy{OutlierDetection: &config.OutlierDetection{Consecutive5xxErrors: &one, MaxEjectionPercent: 100}}}
	return &snapshot.Snapshot{Clusters: map[string]*snapshot.Cluster{c.Name: c}}
}

func fetch(t *testing.T, h http.Handler, target string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func TestClustersTextAndJSON(t *testing.T) {
	code := 200
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }))
	defer backend.Close()
	addr := backend.Listener.Addr().String()
	m := upstream.NewManager(upstream.Options{})
	defer m.Close()
	m.Update(cluster(addr))
	s := &Server{Upstream: m, Metrics: telemetry.NewMetrics()}
	h := s.AdminHandler()
	name := snapshot.ClusterName(9080, "v1", host)
	send := func() {
		req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
		resp, _, err := m.Cluster(name).RoundTrip(context.Background(), req, upstream.AttemptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	send()
	text := fetch(t, h, "/clusters")
	for _, want := range []string{
		"outbound|9080|v1|" + host + "::" + addr + "::health_flags::healthy\n",
		"outbound|9080|v1|" + host + "::" + addr + "::rq_total::1\n",
		"outbound|9080|v1|" + host + "::" + addr + "::rq_active::0\n",
		"outbound|9080|v1|" + host + "::" + addr + "::cx_active::1\n",
		"outbound|9080|v1|" + host + "::" + addr + "::weight::1\n",
		"outbound|9080|v1|" + host + "::default_priority::max_connections::4294967295\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/clusters lacks %q:\n%s", want, text)
		}
	}
	code = 503
	send() // one 5xx ejects
	text = fetch(t, h, "/clusters")
	if want := "::" + addr + "::health_flags::/failed_outlier_check\n"; !strings.Contains(text, want) {
		t.Errorf("/clusters lacks %q after ejection:\n%s", want, text)
	}
	var doc struct {
		Clusters []upstream.ClusterStatus `json:"cluster_statuses"`
	}
	if err := json.Unmarshal([]byte(fetch(t, h, "/clusters?format=json")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Clusters) != 1 || len(doc.Clusters[0].Hosts) != 1 {
		t.Fatalf("json = %+v", doc)
	}
	hs := doc.Clusters[0].Hosts[0]
	if doc.Clusters[0].Name != name || hs.Address != addr || !hs.Ejected || hs.Ejections != 1 || hs.Health != "/failed_outlier_check" || hs.RqTotal != 2 {
		t.Errorf("json host = %+v", hs)
	}
}

func TestClustersWithoutUpstream(t *testing.T) {
	rec := httptest.NewRecorder()
	(&Server{Metrics: telemetry.NewMetrics()}).AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/clusters", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("code %d; want 503", rec.Code)
	}
}
