package upstream

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
)

// BenchmarkRoundTrip is one pooled HTTP/1.1 request through a cluster to a
// local backend; BenchmarkNetHTTPTransport is the same through net/http's
// Transport, for comparison.
func BenchmarkRoundTrip(b *testing.B) {
	addr, _, _ := backend(b, status(200))
	m := NewManager(Options{})
	defer m.Close()
	m.Update(snap(b, config.HTTP, snapshot.Policy{}, addr))
	c := m.Cluster(clusterName(""))
	req, _ := http.NewRequest("GET", "http://"+testHost+"/", nil)
	benchGets(b, c, req)
}

// benchGets sends req through c once per iteration and reads each answer.
func benchGets(b *testing.B, c *Cluster, req *http.Request) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, _, err := c.RoundTrip(ctx, req, AttemptOptions{})
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func BenchmarkNetHTTPTransport(b *testing.B) {
	addr, _, _ := backend(b, status(200))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
