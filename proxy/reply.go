package proxy

import (
	"net/http"
	"strconv"
	"strings"
)

// Envoy's local reply bodies.
const (
	bodyOverflow  = "upstream connect error or disconnect/reset before headers. reset reason: overflow"
	bodyNoHealthy = "no healthy upstream"
	bodyTimeout   = "upstream request timeout"
	bodyConnect   = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	bodyReset     = "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
	bodyProtocol  = "upstream connect error or disconnect/reset before headers. reset reason: protocol error"
	bodyRetried   = "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: "
)

// isGRPC reports whether r is a gRPC request, whose local replies are gRPC
// statuses.
func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(headerValue(r.Header, "Content-Type"), "application/grpc")
}

// grpcFromHTTP is Envoy's httpToGrpcStatus mapping for local replies.
func grpcFromHTTP(status int) int {
	switch status {
	case 400:
		return 13
	case 401:
		return 16
	case 403:
		return 7
	case 404:
		return 12
	case 429, 502, 503, 504:
		return 14
	}
	return 2
}

// localReply answers the request from the proxy itself, as Envoy's
// sendLocalReply does: a plain-text body, or for gRPC requests a
// trailers-only response with grpc-status and grpc-message. grpcCode < 0
// means "map from status".
func (st *reqState) localReply(status int, body string, grpcCode int) {
	st.status = status
	h := st.w.Header()
	st.applyResponseOps(h)
	if isGRPC(st.r) {
		if grpcCode < 0 {
			grpcCode = grpcFromHTTP(status)
		}
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(grpcCode))
		if body != "" {
			h.Set("Grpc-Message", body)
		}
		st.grpcStatus = strconv.Itoa(grpcCode)
		st.w.WriteHeader(http.StatusOK)
		return
	}
	if body != "" {
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		h.Set("Content-Length", "0")
	}
	st.w.WriteHeader(status)
	if body != "" && st.r.Method != http.MethodHead {
		n, _ := st.w.Write([]byte(body))
		st.bytesSent += int64(n)
	}
}

// applyResponseOps runs the matched route's response header operations on
// h (they apply to local replies too, once a route matched).
func (st *reqState) applyResponseOps(h http.Header) {
	if st.res.Route == nil {
		return
	}
	st.res.ApplyResponseHeaders(st.dest, h)
}
