package proxy

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

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
	st.bytesSent += copyFlush(st.w, resp.Body, resp.ContentLength < 0)
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
		if k == "Grpc-Status" && len(vs) > 0 {
			st.grpcStatus = vs[0]
		}
	}
}

// copyFlush copies src to w. With flush (bodies of unknown length: gRPC,
// SSE, chunked streams) each chunk is flushed as it arrives, so streams
// are never held back; a body of known length is flushed when it ends.
func copyFlush(w http.ResponseWriter, src io.Reader, flush bool) int64 {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
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
