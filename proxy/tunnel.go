package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// passthroughRoute is the route of requests to hosts outside the registry
// under ALLOW_ANY: no timeout, no retries (Istio's allow_any route).
var passthroughRoute = &routing.Route{Name: "allow_any"}

// passthrough forwards a request for an unknown host to its original
// destination: the address the app connected to, or for explicit-proxy
// requests the authority's address.
func (st *reqState) passthrough() {
	cl := st.h.Upstream.Passthrough()
	orig, err := st.originalFor(st.r.Host)
	if err != nil || cl == nil {
		st.flags |= telemetry.UpstreamConnectionFailure
		st.localReply(http.StatusServiceUnavailable, bodyConnect, -1)
		return
	}
	st.ci = withOriginal(st.ci, orig)
	st.forward(cl, passthroughRoute)
}

// inbound forwards a request that arrived on the inbound port to the
// workload at its original destination.
func (st *reqState) inbound() {
	st.routingRequest()
	cl := st.h.Upstream.Passthrough()
	if cl == nil {
		st.flags |= telemetry.NoClusterFound
		st.localReply(http.StatusServiceUnavailable, "", -1)
		return
	}
	st.forward(cl, passthroughRoute)
}

func withOriginal(ci *ConnInfo, orig netip.AddrPort) *ConnInfo {
	c := *ci
	c.Original = orig
	return &c
}

// originalFor is the address a passthrough request goes to: the
// connection's original destination, or the resolved authority when the
// client used the proxy explicitly.
func (st *reqState) originalFor(authority string) (netip.AddrPort, error) {
	if !st.ci.Explicit && st.ci.Original.IsValid() {
		return st.ci.Original, nil
	}
	host, port := authority, "80"
	if h, p, err := net.SplitHostPort(authority); err == nil {
		host, port = h, p
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip, uint16(pn)), nil
	}
	ctx, cancel := context.WithTimeout(st.r.Context(), 5*time.Second)
	defer cancel()
	res := st.h.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	ips, err := res.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, &net.DNSError{Err: "no address", Name: host}
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(pn)), nil
}

// connect serves an explicit-proxy CONNECT: to a registry service through
// its cluster, to anything else under ALLOW_ANY directly, and under
// REGISTRY_ONLY an unknown target gets 502 without being dialled.
func (st *reqState) connect() {
	target := st.r.Host
	host, port, err := net.SplitHostPort(target)
	pn, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil {
		st.localReply(http.StatusBadRequest, "", -1)
		return
	}
	var cl *upstream.Cluster
	opts := upstream.AttemptOptions{}
	if svc := st.snap.Registry.Resolve(host, st.snap.Opts.Namespace, st.snap.Opts.Domain); svc != nil {
		if _, ok := svc.Port(uint32(pn)); ok {
			st.rreq.Authority = target
			cl = st.h.Upstream.Cluster(snapshot.ClusterName(uint32(pn), "", svc.Host))
			if svc.Resolution == "NONE" {
				opts.Original, _ = st.originalFor(target)
			}
		}
	}
	if cl == nil {
		if st.snap.Outbound == snapshot.RegistryOnly {
			st.localReply(http.StatusBadGateway, "", -1)
			return
		}
		if opts.Original, err = st.originalFor(target); err != nil {
			st.flags |= telemetry.UpstreamConnectionFailure
			st.localReply(http.StatusServiceUnavailable, bodyConnect, -1)
			return
		}
		cl = st.h.Upstream.Passthrough()
	}
	up, h, err := cl.DialTCP(st.r.Context(), opts)
	if err != nil {
		st.answer(st.r.Context(), attempt{err: err, kind: failureKind(st.r.Context(), st.r.Context(), err), cancel: func() {}})
		return
	}
	defer up.Close()
	st.upstreamHost = h.Addr
	st.status = http.StatusOK
	st.tunnel(up, nil, func(w io.Writer) { io.WriteString(w, "HTTP/1.1 200 OK\r\n\r\n") })
}

// isUpgrade reports whether r asks to switch protocols (WebSocket and
// other Upgrades, always allowed as on every Istio listener).
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}

// upgrade forwards an Upgrade request over its own upstream connection
// and, on 101, tunnels bytes both ways.
func (st *reqState) upgrade(cl *upstream.Cluster, up *http.Request, opts upstream.AttemptOptions, proto string) {
	conn, h, err := cl.DialTCP(st.r.Context(), opts)
	if err != nil {
		st.answer(st.r.Context(), attempt{err: err, kind: failureKind(st.r.Context(), st.r.Context(), err), cancel: func() {}})
		return
	}
	defer conn.Close()
	st.upstreamHost = h.Addr
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Upgrade", proto)
	up.Body = st.r.Body
	if err := up.Write(conn); err != nil {
		st.answer(st.r.Context(), attempt{err: &upstream.ResetError{Addr: h.Addr, Err: err}, cancel: func() {}})
		return
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, up)
	if err != nil {
		st.answer(st.r.Context(), attempt{err: &upstream.ResetError{Addr: h.Addr, Written: true, Err: err}, cancel: func() {}})
		return
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		st.stream(resp)
		return
	}
	st.status = resp.StatusCode
	st.tunnel(conn, br, func(w io.Writer) { _ = resp.Write(w) })
}

// tunnel hijacks the downstream connection, writes the response head with
// hello, and copies bytes both ways until both directions end.
func (st *reqState) tunnel(up net.Conn, upBuf *bufio.Reader, hello func(io.Writer)) {
	hj, ok := st.w.(http.Hijacker)
	if !ok {
		st.localReply(http.StatusBadRequest, "", -1)
		return
	}
	down, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer down.Close()
	hello(brw)
	if err := brw.Flush(); err != nil {
		return
	}
	var upR io.Reader = up
	if upBuf != nil && upBuf.Buffered() > 0 {
		upR = io.MultiReader(io.LimitReader(upBuf, int64(upBuf.Buffered())), up)
	}
	var downR io.Reader = down
	if n := brw.Reader.Buffered(); n > 0 {
		downR = io.MultiReader(io.LimitReader(brw.Reader, int64(n)), down)
	}
	done := make(chan int64, 1)
	go func() { done <- pipe(up, downR) }()
	st.bytesSent += pipe(down, upR)
	<-done
}

// pipe copies src to dst and half-closes dst's write side at EOF.
func pipe(dst net.Conn, src io.Reader) int64 {
	n, _ := io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = dst.Close()
	}
	return n
}
