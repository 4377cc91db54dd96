package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Telemetry is what the proxy records into: Istio's metrics and the access
// log. A nil *Telemetry records nothing, so tests can pass nil. Its methods
// are safe for concurrent use, never block and, once a label combination
// has been seen, do not allocate.
type Telemetry struct {
	// Metrics receives Istio's metrics. It must not be nil.
	Metrics *Metrics
	// Log receives one line per request and per TCP connection. If nil,
	// nothing is logged.
	Log *AccessLog
}

// New returns a Telemetry recording into m and, if log is not nil, log.
func New(m *Metrics, log *AccessLog) *Telemetry { return &Telemetry{Metrics: m, Log: log} }

// NoGRPCStatus is HTTPRecord.GRPCStatus for a gRPC request that ended
// without a grpc-status (reset, local reply); grpc_response_status is then
// empty, as it is for every non-gRPC request.
const NoGRPCStatus = -1

// LogFields are the access-log values shared by HTTP requests and TCP
// connections. An empty string is logged as null.
type LogFields struct {
	Start                          time.Time // start_time; zero logs null
	UpstreamHost                   string    // upstream_host: endpoint address, host:port
	UpstreamCluster                string    // upstream_cluster, e.g. outbound|80||a.ns.svc.cluster.local
	UpstreamLocalAddress           string    // upstream_local_address
	DownstreamLocalAddress         string    // downstream_local_address: original destination
	DownstreamRemoteAddress        string    // downstream_remote_address
	RequestedServerName            string    // requested_server_name: TLS SNI
	RouteName                      string    // route_name
	ConnectionTerminationDetails   string    // connection_termination_details
	UpstreamTransportFailureReason string    // upstream_transport_failure_reason
}

// HTTPRecord is one completed HTTP or gRPC request, filled in by the proxy
// and passed to RecordHTTP. RecordHTTP copies what it keeps, so the caller
// may reuse the record.
type HTTPRecord struct {
	Labels
	LogFields

	// ResponseCode is the status sent downstream; 0 if none was sent
	// (the client went away first, flag DC).
	ResponseCode int
	// GRPCStatus is the grpc-status sent downstream when Labels.Protocol is
	// ProtocolGRPC, or NoGRPCStatus. It is ignored for other protocols.
	GRPCStatus int32
	// Flags are the request's response flags.
	Flags ResponseFlags
	// Duration runs from the first request byte to the last response byte.
	Duration time.Duration
	// RequestBytes and ResponseBytes are wire bytes received from and sent
	// to the downstream, headers and body (bytes_received, bytes_sent).
	RequestBytes, ResponseBytes int64
	// UpstreamServiceTime is the time from sending the request upstream to
	// its response headers (upstream_service_time, in ms). Zero means no
	// upstream response and logs null.
	UpstreamServiceTime time.Duration

	Method              string // method
	Path                string // path: x-envoy-original-path, else :path
	HTTPProtocol        string // protocol: "HTTP/1.1", "HTTP/2"
	ResponseCodeDetails string // response_code_details, e.g. via_upstream, route_not_found
	XForwardedFor       string // x_forwarded_for
	UserAgent           string // user_agent
	RequestID           string // request_id: x-request-id
	Authority           string // authority: :authority or Host
}

// TCPRecord is one closed TCP connection, filled in by the proxy and passed
// to RecordTCPClose.
type TCPRecord struct {
	Labels
	LogFields

	// Flags are the connection's response flags (UF, UO, NR, ...).
	Flags ResponseFlags
	// SentBytes and ReceivedBytes are the connection's totals sent to and
	// received from the downstream.
	SentBytes, ReceivedBytes int64
	// Duration is how long the downstream connection was open.
	Duration time.Duration
}

// TCPConn is the telemetry state of one proxied TCP connection. The proxy
// keeps it in its connection struct; RecordTCPOpen fills it. Calls on one
// TCPConn must not run concurrently with each other.
type TCPConn struct {
	s                        *tcpSeries
	reportedSent, reportedRx int64
}

// RecordHTTP counts one completed request in Istio's HTTP metrics and
// enqueues its access-log line.
func (t *Telemetry) RecordHTTP(r *HTTPRecord) {
	if t == nil {
		return
	}
	t.Metrics.istio.recordHTTP(r)
	if t.Log != nil {
		t.Log.enqueueHTTP(r)
	}
}

// RecordTCPOpen counts a new TCP connection with labels l (response_flags
// "-") and fills c for the calls that follow.
func (t *Telemetry) RecordTCPOpen(c *TCPConn, l *Labels) {
	if t == nil {
		return
	}
	*c = TCPConn{s: t.Metrics.istio.tcpSeriesFor(l, 0)}
	c.s.opened.Inc()
}

// RecordTCPBytes reports the connection's running totals of bytes sent to
// and received from the downstream; the increase since the last report is
// added to istio_tcp_sent_bytes_total and istio_tcp_received_bytes_total.
// Istio reports every 15 s; the proxy may call this as often as it likes.
func (t *Telemetry) RecordTCPBytes(c *TCPConn, sent, received int64) {
	if t == nil || c.s == nil {
		return
	}
	c.add(c.s, sent, received)
}

// RecordTCPClose counts the connection closed with r's labels and flags,
// adds the bytes of r's totals not yet reported through c to the same
// series, and enqueues its access-log line. c may be a zero TCPConn when
// RecordTCPOpen was never called (the connection was refused first).
func (t *Telemetry) RecordTCPClose(c *TCPConn, r *TCPRecord) {
	if t == nil {
		return
	}
	s := t.Metrics.istio.tcpSeriesFor(&r.Labels, r.Flags)
	s.closed.Inc()
	c.add(s, r.SentBytes, r.ReceivedBytes)
	if t.Log != nil {
		t.Log.enqueueTCP(r)
	}
}

// add adds to s the bytes in the totals sent and received not yet reported.
func (c *TCPConn) add(s *tcpSeries, sent, received int64) {
	if d := sent - c.reportedSent; d > 0 {
		s.sent.Add(float64(d))
		c.reportedSent = sent
	}
	if d := received - c.reportedRx; d > 0 {
		s.received.Add(float64(d))
		c.reportedRx = received
	}
}

// Gauge is a count that goes up and down. The zero Gauge does nothing.
type Gauge struct{ g prometheus.Gauge }

// Inc adds one.
func (g Gauge) Inc() {
	if g.g != nil {
		g.g.Inc()
	}
}

// Dec subtracts one.
func (g Gauge) Dec() {
	if g.g != nil {
		g.g.Dec()
	}
}

// ActiveConnections returns the remora_active_connections gauge of one
// listener (a name from config, never from the wire). A nil Telemetry
// gives the zero Gauge.
func (t *Telemetry) ActiveConnections(listener string) Gauge {
	if t == nil || t.Metrics == nil {
		return Gauge{}
	}
	return Gauge{t.Metrics.ActiveConnections.WithLabelValues(listener)}
}
