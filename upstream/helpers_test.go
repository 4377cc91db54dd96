package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/internal/clock"
	"github.com/remora-mesh/remora/snapshot"
)

// testHost is the service every test cluster belongs to.
const testHost = "reviews.default.svc.cluster.local"

// clusterName is the test cluster's name for subset.
func clusterName(subset string) string { return snapshot.ClusterName(9080, subset, testHost) }

// snap builds a snapshot with one cluster over the given backend
// addresses ("127.0.0.1:port") with policy p.
func snap(t testing.TB, proto config.Protocol, p snapshot.Policy, addrs ...string) *snapshot.Snapshot {
	t.Helper()
	port := snapshot.Port{Number: 9080, Name: "http", Protocol: proto}
	svc := &snapshot.Service{Host: testHost, Namespace: "default", Resolution: "STATIC", Ports: []snapshot.Port{port}}
	for _, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		svc.Endpoints = append(svc.Endpoints, snapshot.Endpoint{
			Address: ap.Addr().String(), Ports: map[string]uint32{"http": uint32(ap.Port())}, Weight: 1,
		})
	}
	c := &snapshot.Cluster{Name: clusterName(""), Service: svc, Port: port, Endpoints: svc.Endpoints, Policy: p}
	return &snapshot.Snapshot{Clusters: map[string]*snapshot.Cluster{c.Name: c}}
}

// ticker is a hand-driven sweep ticker.
type ticker struct {
	ch      chan time.Time
	stopped chan struct{} // receives one value per stopped ticker
}

func newTicker() *ticker { return &ticker{ch: make(chan time.Time), stopped: make(chan struct{}, 16)} }

func (tk *ticker) new(time.Duration) (<-chan time.Time, func()) {
	return tk.ch, func() { tk.stopped <- struct{}{} }
}

// tick runs one sweep and returns once it is done: the second send on the
// unbuffered channel completes only when the loop is back at its select.
func (tk *ticker) tick() {
	tk.ch <- time.Time{}
	tk.ch <- time.Time{}
}

// newTestManager returns a Manager with a fake clock and a hand ticker.
func newTestManager(t *testing.T) (*Manager, *clock.Fake, *ticker) {
	t.Helper()
	clk := clock.NewFake(time.Unix(1000, 0))
	tk := newTicker()
	var seed atomic.Uint64
	m := NewManager(Options{Clock: clk, NewTicker: tk.new, Rand: func() uint64 {
		return seed.Add(0x9e3779b97f4a7c15)
	}})
	t.Cleanup(m.Close)
	return m, clk, tk
}

// backend starts an HTTP/1.1 test server; conns counts new connections.
func backend(t testing.TB, h http.Handler) (addr string, conns *atomic.Int64, srv *httptest.Server) {
	t.Helper()
	conns = new(atomic.Int64)
	srv = httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), conns, srv
}

// status answers every request with code.
func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, strconv.Itoa(code))
	})
}

// get sends one GET through c and reads the whole body.
func get(ctx context.Context, c *Cluster, opt AttemptOptions) (int, *Host, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+testHost+"/status", nil)
	resp, h, err := c.RoundTrip(ctx, req, opt)
	if err != nil {
		return 0, h, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, h, err
}

func u32(n uint32) *uint32 { return &n }

func dur(d time.Duration) *config.Duration { return &config.Duration{Duration: d} }
