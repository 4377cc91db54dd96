package admin

import (
	"encoding/json"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
)

const dumpMesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - timeout: 2s
    route: [{destination: {host: reviews, subset: v1}}]
`

func TestConfigDump(t *testing.T) {
	set, diags := config.Parse("mesh.yaml", []byte(dumpMesh), config.Options{})
	snap, err := snapshot.Build(set, diags, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &snapshot.Store{}
	store.Swap(snap)
	s := &Server{Store: store, Metrics: telemetry.NewMetrics(), Ready: &atomic.Bool{}}
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/config_dump", nil))
	var dump struct {
		Version int `json:"version"`
		Routes  []struct {
			Name   string `json:"name"`
			Routes []struct {
				VirtualService string            `json:"virtual_service"`
				Clusters       map[string]uint32 `json:"weighted_clusters"`
				Timeout        string            `json:"timeout"`
			} `json:"routes"`
		} `json:"routes"`
		Clusters []struct {
			Name      string `json:"name"`
			Effective struct {
				LB string `json:"lb_policy"`
			} `json:"effective"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &dump); err != nil {
		t.Fatalf("config_dump is not JSON: %v\n%s", err, rec.Body.String())
	}
	const v1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
	found := false
	for _, vh := range dump.Routes {
		for _, r := range vh.Routes {
			if vh.Name == "reviews.default.svc.cluster.local:9080" && r.VirtualService == "default/reviews" && r.Clusters[v1] > 0 && r.Timeout == "2s" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("routes lack the reviews rule to %s with timeout 2s:\n%s", v1, rec.Body.String())
	}
	lbs := map[string]string{}
	for _, c := range dump.Clusters {
		lbs[c.Name] = c.Effective.LB
	}
	if lbs[v1] != "ROUND_ROBIN" || lbs["outbound|9080||reviews.default.svc.cluster.local"] != "ROUND_ROBIN" {
		t.Errorf("effective lb policies %v; want ROUND_ROBIN for both reviews clusters", lbs)
	}
}
