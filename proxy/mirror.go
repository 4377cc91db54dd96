package proxy

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/upstream"
)

// defaultMirrorLimit bounds the request-body bytes held by mirrors in
// flight at once.
const defaultMirrorLimit = 16 << 20

// mirrorTimeout bounds a mirror request when the route has no timeout.
const mirrorTimeout = 30 * time.Second

// mirror sends fire-and-forget copies of the request to the route's
// mirrors, each by its percentage. The client never waits for a mirror,
// a failing mirror changes nothing, and mirrors whose bodies would push
// the bytes in flight past MirrorLimit are skipped.
func (st *reqState) mirror(rt *routing.Route, up *http.Request, b *body) {
	for i := range rt.Mirrors {
		m := &rt.Mirrors[i]
		if m.PerMillion < routing.PerMillion && st.h.rand()%routing.PerMillion >= uint64(m.PerMillion) {
			continue
		}
		cl := st.h.Upstream.Cluster(m.Cluster)
		if cl == nil || !st.h.reserveMirror(int64(len(b.buf))) {
			continue
		}
		req := up.Clone(context.Background())
		req.Host = st.h.shadowHost(up.Host)
		if m.Authority != "" {
			req.Host = m.Authority
		}
		timeout := rt.Timeout
		if timeout <= 0 {
			timeout = mirrorTimeout
		}
		go st.h.sendMirror(cl, req, b, timeout)
	}
}

// sendMirror is the goroutine of one mirror request.
func (h *HTTPServer) sendMirror(cl *upstream.Cluster, req *http.Request, b *body, timeout time.Duration) {
	defer h.releaseMirror(int64(len(b.buf)))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Body = b.reader()
	resp, _, err := cl.RoundTrip(ctx, req, upstream.AttemptOptions{})
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// shadowHost is the mirror's Host: unchanged since Istio 1.28, or with
// Envoy's "-shadow" suffix in compatibility mode ("a:80" → "a-shadow:80").
func (h *HTTPServer) shadowHost(host string) string {
	if !h.ShadowSuffix {
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		return host[:i] + "-shadow" + host[i:]
	}
	return host + "-shadow"
}

func (h *HTTPServer) reserveMirror(n int64) bool {
	limit := h.MirrorLimit
	if limit == 0 {
		limit = defaultMirrorLimit
	}
	h.mirrorMu.Lock()
	defer h.mirrorMu.Unlock()
	// Each mirror costs at least 1 KiB, bounding their number too.
	if n < 1<<10 {
		n = 1 << 10
	}
	if h.mirrored+n > limit {
		return false
	}
	h.mirrored += n
	return true
}

func (h *HTTPServer) releaseMirror(n int64) {
	if n < 1<<10 {
		n = 1 << 10
	}
	h.mirrorMu.Lock()
	h.mirrored -= n
	h.mirrorMu.Unlock()
}
