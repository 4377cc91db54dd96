package proxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/fault"
	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
)

// reqState is one request on its way through the chain.
type reqState struct {
	h     *HTTPServer
	w     http.ResponseWriter
	r     *http.Request
	ci    *ConnInfo
	snap  *snapshot.Snapshot
	rreq  routing.Request
	res   routing.Result
	dest  *routing.Destination
	start time.Time

	status       int
	grpcStatus   string
	flags        telemetry.ResponseFlags
	bytesSent    int64
	upstreamHost string
	upstreamTime time.Duration
	requestID    string
}

// ServeHTTP runs one request through the chain.
func (h *HTTPServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serveHTTP(w, r, connInfo(r), 0)
}

// serveHTTP runs r through the chain; a non-zero reject is the status of
// a head the HTTP/1 codec refused, answered as Envoy answers a codec
// error.
func (h *HTTPServer) serveHTTP(w http.ResponseWriter, r *http.Request, ci *ConnInfo, reject int) {
	st := &reqState{h: h, w: w, r: r, ci: ci, snap: h.snapshot(ci), start: time.Now()}
	if h.Telemetry != nil && h.Telemetry.Metrics != nil {
		h.Telemetry.Metrics.ActiveRequests.Inc()
		defer h.Telemetry.Metrics.ActiveRequests.Dec()
	}
	defer st.finish()
	st.requestID = headerValue(r.Header, "X-Request-Id")
	if st.requestID == "" {
		st.requestID = newRequestID(h.rand)
		r.Header["X-Request-Id"] = []string{st.requestID}
	}
	h.serverHeader(w, ci)
	if reject != 0 {
		st.rejectHead(reject)
		return
	}
	if tooManyHeaders(r) {
		st.flags |= telemetry.DownstreamProtocolError
		st.localReply(http.StatusRequestHeaderFieldsTooLarge, http.StatusText(http.StatusRequestHeaderFieldsTooLarge), -1)
		return
	}
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		st.localReply(http.StatusUpgradeRequired, "", -1) // Envoy rejects HTTP/1.0
		return
	}
	if st.snap == nil {
		st.flags |= telemetry.NoRouteFound
		st.localReply(http.StatusServiceUnavailable, "no configuration loaded", -1)
		return
	}
	if ci.Inbound {
		st.inbound()
		return
	}
	if r.Method == http.MethodConnect {
		st.connect()
		return
	}
	st.route()
}

func (h *HTTPServer) serverHeader(w http.ResponseWriter, ci *ConnInfo) {
	if ci.Inbound || h.Gateway {
		w.Header()["Server"] = serverIstioEnvoy
	} else {
		w.Header()["Server"] = serverEnvoy
	}
}

// The server header's values (shared: see teTrailers).
var serverEnvoy, serverIstioEnvoy = []string{"envoy"}, []string{"istio-envoy"}

// routingRequest fills the routing view of r without copying.
func (st *reqState) routingRequest() {
	r := st.r
	path := r.RequestURI
	if path == "" || path[0] != '/' { // absolute form (explicit proxy) or "*"
		path = r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	st.rreq = routing.Request{Method: r.Method, Scheme: scheme, Authority: r.Host, Path: path, Header: r.Header, Port: st.port()}
}

// port is the listener port the request is routed on: the original
// destination's, or for explicit-proxy requests the authority's (80 by
// default).
func (st *reqState) port() uint32 {
	if !st.ci.Explicit && st.ci.Port != 0 {
		return st.ci.Port
	}
	host := st.r.Host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		if p, err := strconv.ParseUint(host[i+1:], 10, 16); err == nil {
			return uint32(p)
		}
	}
	if st.r.TLS != nil {
		return 443
	}
	return 80
}

// route matches the request and runs the matched rule's action.
func (st *reqState) route() {
	st.routingRequest()
	st.res = st.snap.Routes.Match(&st.rreq)
	switch st.res.Outcome {
	case routing.UnknownHost:
		st.unknownHost()
		return
	case routing.NotFound:
		st.flags |= telemetry.NoRouteFound
		st.localReply(http.StatusNotFound, "", -1)
		return
	}
	rt := st.res.Route
	if rt.Fault != nil && st.fault(rt.Fault) {
		return
	}
	if rt.CORS != nil && st.cors(rt.CORS) {
		return
	}
	switch {
	case rt.Redirect != nil:
		st.w.Header().Set("Location", st.res.RedirectLocation(&st.rreq))
		st.localReply(rt.Redirect.Code, "", -1)
		return
	case rt.DirectResponse != nil:
		st.directResponse(rt.DirectResponse)
		return
	}
	st.dest = rt.Pick(st.h.rand())
	cl := st.h.Upstream.Cluster(st.dest.Cluster)
	if cl == nil {
		st.flags |= telemetry.NoClusterFound
		st.localReply(http.StatusServiceUnavailable, "", -1)
		return
	}
	st.forward(cl, rt)
}

// unknownHost handles a request for a host no virtual host serves: a
// gateway answers 404 (NR); a sidecar under ALLOW_ANY passes it to its
// original destination, under REGISTRY_ONLY answers 502 with an empty body
// (Istio's block_all route).
func (st *reqState) unknownHost() {
	if st.h.Gateway { // a gateway serves only its Gateways' hosts
		st.flags |= telemetry.NoRouteFound
		st.localReply(http.StatusNotFound, "", -1)
		return
	}
	if st.snap.Outbound == snapshot.RegistryOnly {
		st.localReply(http.StatusBadGateway, "", -1)
		return
	}
	st.passthrough()
}

func (st *reqState) directResponse(d *routing.DirectResponse) {
	st.status = d.Status
	h := st.w.Header()
	st.applyResponseOps(h)
	h.Set("Content-Length", strconv.Itoa(len(d.Body)))
	st.w.WriteHeader(d.Status)
	if st.r.Method != http.MethodHead {
		n, _ := st.w.Write(d.Body)
		st.bytesSent += int64(n)
	}
}

// fault applies the route's fault injection; it reports whether the
// request was answered (aborted, or the client left during the delay).
func (st *reqState) fault(f *fault.Policy) bool {
	d := f.Decide(st.h.rand)
	if d.Delayed() {
		st.flags |= telemetry.DelayInjected
		t := time.NewTimer(d.Delay)
		select {
		case <-t.C:
		case <-st.r.Context().Done():
			t.Stop()
			st.flags |= telemetry.DownstreamConnectionTermination
			return true
		}
	}
	if !d.Aborted {
		return false
	}
	st.flags |= telemetry.FaultInjected
	switch {
	case d.IsGRPC && isGRPC(st.r):
		st.localReply(http.StatusOK, fault.AbortBody, d.GRPCStatus)
	case d.IsGRPC: // a gRPC abort of a plain HTTP request: Envoy answers 200
		st.localReply(http.StatusOK, fault.AbortBody, -1)
	default:
		st.localReply(d.HTTPStatus, fault.AbortBody, -1)
	}
	return true
}

// cors answers a matching preflight locally and adds CORS headers to
// simple requests; it reports whether the request was answered.
func (st *reqState) cors(c *routing.CORS) bool {
	origin := st.r.Header.Get("Origin")
	if origin == "" || !c.AllowsOrigin(origin) {
		return false
	}
	if routing.IsPreflight(&st.rreq) {
		c.PreflightHeaders(origin, st.w.Header())
		st.localReply(http.StatusOK, "", -1)
		return true
	}
	c.ResponseHeaders(origin, st.w.Header())
	return false
}

// finish records the request for metrics and the access log.
func (st *reqState) finish() {
	tel := st.h.Telemetry
	if tel == nil {
		return
	}
	rec := telemetry.HTTPRecord{
		Labels: st.h.Local, ResponseCode: st.status, GRPCStatus: telemetry.NoGRPCStatus, Flags: st.flags,
		Duration: time.Since(st.start), RequestBytes: max(st.r.ContentLength, 0), ResponseBytes: st.bytesSent,
		UpstreamServiceTime: st.upstreamTime, Method: st.r.Method, Path: st.rreq.Path, HTTPProtocol: st.r.Proto,
		XForwardedFor: headerValue(st.r.Header, "X-Forwarded-For"), UserAgent: st.r.UserAgent(), RequestID: st.requestID,
		Authority: st.r.Host,
	}
	rec.Start, rec.UpstreamHost, rec.RouteName = st.start, st.upstreamHost, st.res.Name
	if st.ci.Remote.IsValid() {
		rec.DownstreamRemoteAddress = st.r.RemoteAddr
		if rec.DownstreamRemoteAddress == "" {
			rec.DownstreamRemoteAddress = st.ci.Remote.String()
		}
	}
	if st.ci.Original.IsValid() {
		rec.DownstreamLocalAddress = st.ci.original
		if rec.DownstreamLocalAddress == "" {
			rec.DownstreamLocalAddress = st.ci.Original.String()
		}
	}
	if rec.Path == "" {
		rec.Path = st.r.URL.RequestURI()
	}
	if st.ci.Inbound {
		rec.Reporter, rec.Destination, rec.Source = telemetry.ReporterDestination, st.h.Local.Source, telemetry.Peer{}
		rec.SecurityPolicy = telemetry.SecurityNone
	}
	if st.dest != nil {
		rec.UpstreamCluster = st.dest.Cluster
		if svc := st.snap.Registry.Service(st.dest.Host); svc != nil {
			rec.Service = telemetry.Service{Host: svc.Host, Name: svc.Host, Namespace: svc.Namespace}
		}
	}
	if isGRPC(st.r) {
		rec.Protocol = telemetry.ProtocolGRPC
		if c, err := strconv.Atoi(st.grpcStatus); err == nil {
			rec.GRPCStatus = int32(c)
		}
	}
	tel.RecordHTTP(&rec)
}

// newRequestID returns a random UUID v4, as Envoy generates x-request-id.
func newRequestID(rnd func() uint64) string {
	const hex = "0123456789abcdef"
	var b [36]byte
	a, c := rnd(), rnd()
	src := [16]byte{}
	for i := range 8 {
		src[i] = byte(a >> (8 * i))
		src[8+i] = byte(c >> (8 * i))
	}
	src[6] = src[6]&0x0f | 0x40
	src[8] = src[8]&0x3f | 0x80
	j := 0
	for i, v := range src {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[v>>4], hex[v&0x0f]
		j += 2
	}
	return string(b[:])
}

// withTimeout returns ctx bounded by d, or ctx itself when d is zero.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
