package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/remora-mesh/remora/lb"
	"github.com/remora-mesh/remora/upstream"
)

// hashFor sets the consistent-hash key of the request when the chosen
// cluster's DestinationRule asks for one. A missing header, cookie or
// parameter leaves HasHash unset (Envoy then picks at random); a cookie
// with a TTL is generated when absent and set on the response.
func (st *reqState) hashFor(opts *upstream.AttemptOptions) {
	if st.dest == nil {
		return
	}
	c := st.snap.Clusters[st.dest.Cluster]
	if c == nil || c.Policy.LoadBalancer == nil || c.Policy.LoadBalancer.ConsistentHash == nil {
		return
	}
	ch := c.Policy.LoadBalancer.ConsistentHash
	r := st.r
	switch {
	case ch.HTTPHeaderName != "":
		if v := r.Header.Get(ch.HTTPHeaderName); v != "" {
			opts.Hash, opts.HasHash = lb.HashHeader(v), true
		}
	case ch.UseSourceIP:
		if st.ci.Remote.IsValid() {
			opts.Hash, opts.HasHash = lb.HashSourceIP(st.ci.Remote.Addr().String()), true
		}
	case ch.HTTPQueryParameterName != "":
		if v := r.URL.Query().Get(ch.HTTPQueryParameterName); v != "" {
			opts.Hash, opts.HasHash = lb.HashQueryParam(v), true
		}
	case ch.HTTPCookie != nil:
		if ck, err := r.Cookie(ch.HTTPCookie.Name); err == nil {
			opts.Hash, opts.HasHash = lb.HashCookie(ck.Value), true
			return
		}
		if ch.HTTPCookie.TTL == nil {
			return
		}
		v := strconv.FormatUint(st.h.rand(), 16)
		opts.Hash, opts.HasHash = lb.HashCookie(v), true
		ck := &http.Cookie{Name: ch.HTTPCookie.Name, Value: v, Path: ch.HTTPCookie.Path, HttpOnly: true}
		if ttl := ch.HTTPCookie.TTL.Duration; ttl > 0 {
			ck.MaxAge = int(ttl / time.Second)
		}
		st.w.Header().Add("Set-Cookie", ck.String())
	}
}
