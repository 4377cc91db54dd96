package proxy

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
)

// holdHTTP keeps every HTTP connection open until release is closed.
type holdHTTP struct{ release chan struct{} }

func (h holdHTTP) ServeConn(c net.Conn, _ *ConnInfo) { <-h.release }

// TestActiveConnectionsGauge: remora_active_connections{listener} counts
// the connections a listener serves, and returns to 0 when they close.
func TestActiveConnectionsGauge(t *testing.T) {
	snap, err := snapshot.Build(&config.Set{}, nil, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &snapshot.Store{}
	store.Swap(snap)
	m := telemetry.NewMetrics()
	h := holdHTTP{release: make(chan struct{})}
	l := &Listener{Name: "outbound", Store: store, HTTP: h, Telemetry: telemetry.New(m, nil)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve(ln)
	defer l.Shutdown(t.Context())
	gauge := func() float64 { return testutil.ToFloat64(m.ActiveConnections.WithLabelValues("outbound")) }
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if !waitUntil(2*time.Second, func() bool { return gauge() == 3 }) {
		t.Errorf("remora_active_connections = %v with 3 open; want 3", gauge())
	}
	close(h.release)
	for _, c := range conns {
		c.Close()
	}
	if !waitUntil(2*time.Second, func() bool { return gauge() == 0 }) {
		t.Errorf("remora_active_connections = %v after close; want 0", gauge())
	}
}

func waitUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestTCPBytesReportedWhileOpen: a long TCP connection's bytes reach
// istio_tcp_received_bytes_total and istio_tcp_sent_bytes_total before it
// closes (Istio reports every 15 s; the test's interval is 50 ms).
func TestTCPBytesReportedWhileOpen(t *testing.T) {
	st := testStore(t, testConfig)
	m := telemetry.NewMetrics()
	tl := startListener(t, st, false, netip.MustParseAddrPort("198.18.0.11:9000"), echoServer(t, ""), func(l *Listener) {
		l.Telemetry, l.ReportInterval = telemetry.New(m, nil), 50*time.Millisecond
	})
	c := dialTest(t, tl.addr)
	defer c.Close()
	if got := roundTrip(t, c, "hello"); got != "hello" {
		t.Fatalf("echo = %q", got)
	}
	total := func(name string) float64 {
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, mf := range mfs {
			if mf.GetName() == name {
				for _, s := range mf.GetMetric() {
					sum += s.GetCounter().GetValue()
				}
			}
		}
		return sum
	}
	if !waitUntil(3*time.Second, func() bool {
		return total("istio_tcp_received_bytes_total") == 5 && total("istio_tcp_sent_bytes_total") == 5
	}) {
		t.Fatalf("while open: received %v, sent %v; want 5 and 5",
			total("istio_tcp_received_bytes_total"), total("istio_tcp_sent_bytes_total"))
	}
	c.Close()
	tl.record(t)
	if r, s := total("istio_tcp_received_bytes_total"), total("istio_tcp_sent_bytes_total"); r != 5 || s != 5 {
		t.Errorf("after close: received %v, sent %v; want 5 and 5 (no double count)", r, s)
	}
}
