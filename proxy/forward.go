package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// retryBufferLimit is how much of a request body is kept so the request
// can be retried or mirrored: Envoy's default per-connection buffer limit.
// A larger body streams once, without retries or mirrors.
const retryBufferLimit = 1 << 20

// hopHeaders are removed before forwarding, in both directions.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Te", "Transfer-Encoding", "Upgrade", "Proxy-Authorization"}

// body is a request body that can be replayed when it was buffered whole.
type body struct {
	buf    []byte
	rest   io.Reader // the unbuffered remainder; nil when buf is the whole body
	length int64
}

// emptyBody is the body of requests without one; it is never modified.
var emptyBody = &body{}

// readBody buffers up to retryBufferLimit bytes of r's body.
func readBody(r *http.Request) (*body, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return emptyBody, nil
	}
	if r.ContentLength > retryBufferLimit {
		return &body{rest: r.Body, length: r.ContentLength}, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, retryBufferLimit+1))
	if err != nil {
		return nil, err
	}
	if len(buf) > retryBufferLimit {
		return &body{buf: buf, rest: r.Body, length: r.ContentLength}, nil
	}
	return &body{buf: buf, length: int64(len(buf))}, nil
}

// replayable reports whether the body can be sent again.
func (b *body) replayable() bool { return b.rest == nil }

// reader returns the body for one attempt.
func (b *body) reader() io.ReadCloser {
	switch {
	case b.rest == nil && len(b.buf) == 0:
		return http.NoBody
	case b.rest == nil:
		return io.NopCloser(bytes.NewReader(b.buf))
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b.buf), b.rest))
}

// upstreamRequest prepares the request the attempts send: rewritten path
// and authority, hop-by-hop headers removed, header operations applied,
// Envoy's x-forwarded-proto and x-envoy-original-path set. As in Envoy,
// the downstream request's header map is the one modified (the access
// log sees the forwarded headers). Upstream calls take their context as
// an argument, so the request carries none of its own.
func (st *reqState) upstreamRequest(b *body) (*http.Request, error) {
	r := st.r
	u := r.URL
	if u.Scheme != "" || u.Host != "" || u.User != nil || u.Fragment != "" {
		u = &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	}
	if p, ok := st.res.RewritePath(st.rreq.Path); ok {
		nu, err := url.ParseRequestURI(p)
		if err != nil {
			return nil, err
		}
		u = nu
	}
	h := r.Header
	te := headerValue(h, "Te")
	removeHop(h)
	if te == "trailers" {
		h["Te"] = teTrailers
	}
	host := r.Host
	if a, ok := st.res.RewriteAuthority(st.dest); ok {
		host = a
	}
	if u.Path != r.URL.Path {
		h.Set("X-Envoy-Original-Path", r.URL.RequestURI())
	}
	h["X-Forwarded-Proto"] = protoHTTP
	if st.rreq.Scheme == "https" {
		h["X-Forwarded-Proto"] = protoHTTPS
	}
	if st.h.Gateway && st.ci.Remote.IsValid() {
		appendXFF(h, st.ci.Remote.Addr().String())
	}
	st.res.ApplyRequestHeaders(st.dest, h)
	if a := headerValue(h, "Host"); a != "" { // a header operation on host
		host = a
		delete(h, "Host")
	}
	up := &http.Request{
		Method: r.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: host, ContentLength: b.length, Trailer: r.Trailer,
	}
	if b.length == 0 && r.ContentLength < 0 && b.rest == nil && len(b.buf) == 0 {
		up.ContentLength = 0
	}
	return up, nil
}

// Shared one-element values for fields remora sets: a slice whose length
// is its capacity is copied by any append, so sharing it is safe.
var (
	teTrailers = []string{"trailers"}
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)

// smallInts are the one-element value lists of 0 to 255, shared by the
// fields remora sets to small numbers (attempt count, upstream service
// time in ms).
var smallInts = func() (t [256][]string) {
	for i := range t {
		t[i] = []string{strconv.Itoa(i)}
	}
	return t
}()

// smallInt is n's value list, shared when n is small.
func smallInt[T int | int64](n T) []string {
	if n >= 0 && n < T(len(smallInts)) {
		return smallInts[n]
	}
	return []string{strconv.FormatInt(int64(n), 10)}
}

// headerValue is Header.Get for a key already in canonical form.
func headerValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func removeHop(h http.Header) {
	for _, f := range h["Connection"] {
		for f != "" {
			var k string
			k, f, _ = strings.Cut(f, ",")
			if k = strings.TrimSpace(k); k != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(k))
			}
		}
	}
	for _, k := range hopHeaders { // canonical already
		delete(h, k)
	}
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func appendXFF(h http.Header, ip string) {
	if prior := h.Get("X-Forwarded-For"); prior != "" {
		h.Set("X-Forwarded-For", prior+", "+ip)
		return
	}
	h.Set("X-Forwarded-For", ip)
}

// attempt is the outcome of one try.
type attempt struct {
	resp   *http.Response
	host   string
	err    error
	kind   routing.FailureKind
	cancel context.CancelFunc
}

// forward sends the request to cluster cl under the route's timeout and
// retry policy, mirrors it, and streams the final answer back.
func (st *reqState) forward(cl *upstream.Cluster, rt *routing.Route) {
	var b *body
	var err error
	upgrade := headerValue(st.r.Header, "Upgrade") // read before the hop-by-hop fields go
	if upgrade != "" && !isUpgrade(st.r) {
		upgrade = ""
	}
	if upgrade != "" {
		b = &body{length: -1, rest: st.r.Body} // the upgraded stream is not buffered
	} else {
		b, err = readBody(st.r)
	}
	if err != nil {
		st.flags |= telemetry.DownstreamConnectionTermination
		st.localReply(http.StatusBadRequest, "", -1)
		return
	}
	ctx, cancel := withTimeout(st.r.Context(), rt.Timeout)
	defer cancel()
	opts := upstream.AttemptOptions{Original: st.ci.Original}
	st.hashFor(&opts)
	up, err := st.upstreamRequest(b)
	if err != nil {
		st.localReply(http.StatusBadRequest, "", -1)
		return
	}
	if upgrade != "" {
		st.upgrade(cl, up, opts, upgrade)
		return
	}
	if b.replayable() {
		st.mirror(rt, up, b)
	}
	a := st.tryAll(ctx, cl, rt, up, b, &opts)
	st.answer(ctx, a)
}

// tryAll runs attempts until one is final: a response that is not
// retriable, a failure that is not, the retry budget spent, or the route
// timeout.
func (st *reqState) tryAll(ctx context.Context, cl *upstream.Cluster, rt *routing.Route, up *http.Request, b *body, opts *upstream.AttemptOptions) attempt {
	policy := rt.Retry
	sent := time.Now()
	unwritten := 0
	for n := 1; ; n++ {
		a := st.try(ctx, cl, policy, up, b, opts, n)
		st.upstreamTime = time.Since(sent)
		if unwrittenRetry(ctx, &a, b, unwritten) {
			unwritten++
			a.discard()
			n--
			continue
		}
		retry := n <= retries(policy) && b.replayable() && ctx.Err() == nil && st.retriable(policy, &a)
		if !retry {
			if n > 1 && st.retriable(policy, &a) {
				st.flags |= telemetry.UpstreamRetryLimitExceeded
			}
			return a
		}
		release, ok := cl.TryRetry()
		if !ok {
			st.flags |= telemetry.UpstreamOverflow
			return a
		}
		a.discard()
		if a.host != "" && (policy == nil || policy.IgnorePreviousHosts) {
			opts.Exclude = append(opts.Exclude, a.host)
		}
		wait := policy.Backoff(n, st.h.rand())
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		release()
		if ctx.Err() != nil {
			return attempt{err: ctx.Err(), kind: routing.FailureReset, cancel: func() {}}
		}
	}
}

// maxUnwrittenRetries bounds the free retries of requests that failed
// before any byte of them reached the upstream.
const maxUnwrittenRetries = 2

// unwrittenRetry reports whether a failed before its request was written
// (a pooled connection the server had closed): it is sent again at once,
// on another connection, without a retry policy and without counting
// against one, as Envoy's pool does for a request it never started.
func unwrittenRetry(ctx context.Context, a *attempt, b *body, done int) bool {
	return done < maxUnwrittenRetries && a.err != nil && neverWritten(a.err) && b.replayable() && ctx.Err() == nil
}

// neverWritten reports whether err is a reset before any byte of the
// request reached the upstream (and not a protocol error). It is a
// function of its own so the error target is only allocated on errors.
func neverWritten(err error) bool {
	var re *upstream.ResetError
	return errors.As(err, &re) && !re.Written && !re.Protocol
}

// retries is how many retries policy allows; nil allows none.
func retries(p *routing.RetryPolicy) int {
	if p == nil {
		return 0
	}
	return p.Attempts
}

// try sends one attempt with the per-try timeout.
func (st *reqState) try(ctx context.Context, cl *upstream.Cluster, policy *routing.RetryPolicy, up *http.Request, b *body, opts *upstream.AttemptOptions, n int) attempt {
	actx, acancel := ctx, context.CancelFunc(func() {})
	if policy != nil && policy.PerTryTimeout > 0 {
		actx, acancel = context.WithTimeout(ctx, policy.PerTryTimeout)
	}
	req := up // attempts run one after another; each gets the body anew
	req.Body = b.reader()
	req.Header["X-Envoy-Attempt-Count"] = smallInt(n)
	resp, host, err := cl.RoundTrip(actx, req, *opts)
	a := attempt{resp: resp, err: err, cancel: acancel}
	if host != nil {
		a.host = host.Addr
		st.upstreamHost = host.Addr
	}
	if err != nil {
		a.kind = failureKind(ctx, actx, err)
	}
	return a
}

func failureKind(route, try context.Context, err error) routing.FailureKind {
	var ce *upstream.ConnectError
	var re *upstream.ResetError
	switch {
	case errors.As(err, &ce):
		return routing.FailureConnect
	case route.Err() == nil && try.Err() != nil:
		return routing.FailurePerTryTimeout
	case errors.As(err, &re) && !re.Written:
		return routing.FailureResetBeforeRequest
	}
	return routing.FailureReset
}

// retriable reports whether a's outcome allows a retry under policy.
func (st *reqState) retriable(policy *routing.RetryPolicy, a *attempt) bool {
	if errors.Is(a.err, upstream.ErrOverflow) || errors.Is(a.err, upstream.ErrNoHealthyUpstream) {
		return false
	}
	if a.err != nil {
		return policy.ShouldRetry(0, "", a.kind)
	}
	return policy.ShouldRetry(a.resp.StatusCode, a.resp.Header.Get("Grpc-Status"), routing.FailureNone)
}

func (a *attempt) discard() {
	if a.resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(a.resp.Body, 64<<10))
		a.resp.Body.Close()
	}
	a.cancel()
}

// answer writes the final attempt's outcome downstream.
func (st *reqState) answer(ctx context.Context, a attempt) {
	if a.cancel != nil {
		defer a.cancel()
	}
	if a.err == nil {
		st.stream(a.resp)
		return
	}
	retried := st.flags.Has(telemetry.UpstreamRetryLimitExceeded)
	var re *upstream.ResetError
	switch {
	case errors.Is(a.err, upstream.ErrOverflow):
		st.flags |= telemetry.UpstreamOverflow
		st.w.Header().Set("X-Envoy-Overloaded", "true")
		st.localReply(http.StatusServiceUnavailable, bodyOverflow, -1)
	case errors.Is(a.err, upstream.ErrNoHealthyUpstream):
		st.flags |= telemetry.NoHealthyUpstream
		st.localReply(http.StatusServiceUnavailable, bodyNoHealthy, -1)
	case st.r.Context().Err() != nil:
		st.flags |= telemetry.DownstreamConnectionTermination
	case ctx.Err() != nil || a.kind == routing.FailurePerTryTimeout:
		st.flags |= telemetry.UpstreamRequestTimeout
		st.localReply(http.StatusGatewayTimeout, bodyTimeout, -1)
	case a.kind == routing.FailureConnect:
		st.flags |= telemetry.UpstreamConnectionFailure
		st.localReply(http.StatusServiceUnavailable, resetBody(retried, bodyConnect, "connection failure"), -1)
	case errors.As(a.err, &re) && re.Protocol:
		st.flags |= telemetry.UpstreamProtocolError
		st.localReply(http.StatusServiceUnavailable, resetBody(retried, bodyProtocol, "protocol error"), -1)
	default:
		st.flags |= telemetry.UpstreamConnectionTermination
		st.localReply(http.StatusServiceUnavailable, resetBody(retried, bodyReset, "connection termination"), -1)
	}
}

func resetBody(retried bool, plain, reason string) string {
	if retried {
		return bodyRetried + reason
	}
	return plain
}
