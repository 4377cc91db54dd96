package proxy

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Body copy buffers: 32 KiB for bodies of unknown or larger length, 4 KiB
// for the small bodies most API calls answer (so 64 requests in flight
// hold 256 KiB, not 2 MiB).
var (
	copyBufs      = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	smallCopyBufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}
)

// stream writes an upstream response downstream: headers without
// hop-by-hop fields, the route's response operations, Envoy's
// x-envoy-upstream-service-time and server header, then the body (flushed
// as it arrives, so streams are not buffered) and trailers.
func (st *reqState) stream(resp *http.Response) {
	defer resp.Body.Close()
	h := st.w.Header()
	server := h["Server"]
	for k, vs := range resp.Header {
		h[k] = vs
	}
	removeHop(h)
	h["Server"] = server
	h["X-Envoy-Upstream-Service-Time"] = smallInt(st.upstreamTime.Milliseconds())
	st.applyResponseOps(h)
	if resp.ContentLength >= 0 && headerValue(resp.Header, "Content-Length") == "" && len(resp.TransferEncoding) == 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	st.status = resp.StatusCode
	st.grpcStatus = headerValue(resp.Header, "Grpc-Status")
	st.w.WriteHeader(resp.StatusCode)
	st.bytesSent += copyFlush(st.w, resp.Body, resp.ContentLength)
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
		if k == "Grpc-Status" && len(vs) > 0 {
			st.grpcStatus = vs[0]
		}
	}
}

// copyFlush copies src, a body of length bytes (-1: unknown), to w. A
// body of unknown length (gRPC, SSE, chunked streams) is flushed chunk by
// chunk as it arrives, so streams are never held back; a body of known
// length is flushed when it ends.
func copyFlush(w http.ResponseWriter, src io.Reader, length int64) int64 {
	flush := length < 0
	pool := &copyBufs
	if length >= 0 && length <= 4<<10 {
		pool = &smallCopyBufs
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	var total int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if err != nil {
			return total
		}
	}
}
