package proxy

import (
	"net/http"
	"time"

	"github.com/remora-mesh/remora/telemetry"
)

// rejectHead answers a head the HTTP/1 codec refused with Envoy's reply
// to a codec error: the status and its text, the connection closed, flag
// DPE. Nothing of the head reaches an upstream.
func (st *reqState) rejectHead(status int) {
	st.flags |= telemetry.DownstreamProtocolError
	st.r.Host, st.rreq.Path = "", "/"
	st.w.Header().Set("Connection", "close")
	st.localReply(status, http.StatusText(status), -1)
}

// tooManyHeaders reports whether an HTTP/2 request carries more header
// fields than Envoy's max_headers_count (HTTP/1 heads are counted by the
// codec).
func tooManyHeaders(r *http.Request) bool {
	if r.ProtoMajor < 2 {
		return false
	}
	n := 0
	for _, vs := range r.Header {
		n += len(vs)
	}
	return n > MaxRequestHeaders
}

// HTTP/2 limits of the downstream server.
const (
	// MaxConcurrentStreams bounds the streams one downstream HTTP/2
	// connection may have open. Envoy's default is 2^31-1 with its
	// overload manager as the real bound; remora serves each stream on a
	// goroutine, so it advertises a bound that gRPC clients multiplexing
	// many calls still stay well inside.
	MaxConcurrentStreams = 1000
	// MaxReadFrameSize is the largest HTTP/2 frame remora reads: the
	// protocol's initial 16 KiB, as Envoy advertises.
	MaxReadFrameSize = 16 << 10
)

// http2Limits is the downstream HTTP/2 configuration. net/http's server
// also bounds what Envoy's codec protections bound: queued control frames
// (SETTINGS and PING floods close the connection), rapid reset (handlers
// limited to the concurrent streams, resets answered without new
// goroutines), and header list size (MaxHeaderBytes).
func http2Limits() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          MaxConcurrentStreams,
		MaxReadFrameSize:              MaxReadFrameSize,
		MaxReceiveBufferPerConnection: 1 << 20,
		MaxReceiveBufferPerStream:     1 << 20,
		PingTimeout:                   15 * time.Second,
	}
}
