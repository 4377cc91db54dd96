// Package upstream holds the live state of every cluster, reconciled with
// each snapshot: endpoints, load-balancing pickers, outlier detection,
// connection pools with Envoy's circuit breakers, dialing and TLS
// origination. State is keyed by cluster name and endpoint address so it
// survives reloads.
package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"

	"github.com/remora-mesh/remora/snapshot"
)

// Errors a caller maps to Envoy's response flags with errors.Is / As.
var (
	// ErrOverflow: a circuit breaker is open (503, x-envoy-overloaded, UO).
	ErrOverflow = errors.New("upstream overflow")
	// ErrNoHealthyUpstream: no endpoint to pick (503 "no healthy upstream", UH).
	ErrNoHealthyUpstream = errors.New("no healthy upstream")
)

// A ConnectError means no connection to Addr could be made (503, flag UF).
type ConnectError struct {
	Addr string
	Err  error
}

func (e *ConnectError) Error() string { return "connect " + e.Addr + ": " + e.Err.Error() }
func (e *ConnectError) Unwrap() error { return e.Err }

// A ResetError means the upstream connection failed after the request
// was written, before response headers (503, flag UC/UR), or the response
// could not be parsed (502, flag UPE when Protocol is set).
type ResetError struct {
	Addr string
	// Written reports whether any of the request reached the upstream; a
	// request that was never written may be retried safely.
	Written  bool
	Protocol bool
	Err      error
}

func (e *ResetError) Error() string { return "upstream " + e.Addr + ": " + e.Err.Error() }
func (e *ResetError) Unwrap() error { return e.Err }

// Host is one endpoint of a cluster as the proxy sees it.
type Host struct {
	// Addr is "ip:port".
	Addr string
}

// AttemptOptions shape one pick or request attempt.
type AttemptOptions struct {
	// Hash is the consistent-hash key of the request, when HasHash.
	Hash    uint64
	HasHash bool
	// Exclude are hosts tried by earlier attempts (Envoy previous_hosts).
	Exclude []string
	// Original is the connection's original destination, for
	// PASSTHROUGH / resolution NONE clusters and the PassthroughCluster.
	Original netip.AddrPort
}

// Manager owns every live cluster. It is safe for concurrent use.
type Manager struct{}

// Update reconciles the live clusters with snap; endpoints that remain
// keep their state (active requests, ejections).
func (m *Manager) Update(snap *snapshot.Snapshot) {}

// Cluster returns the live cluster by name, or nil when the current
// snapshot has none (the caller answers 503 NC).
func (m *Manager) Cluster(name string) *Cluster { return nil }

// Passthrough is the cluster that connects to each request's original
// destination (ALLOW_ANY).
func (m *Manager) Passthrough() *Cluster { return nil }

// Cluster is one live upstream cluster.
type Cluster struct{}

// DialTCP picks an endpoint and connects to it for a TCP proxy
// connection, enforcing maxConnections (ErrOverflow) and connectTimeout
// (*ConnectError); Close on the returned conn releases its slot.
func (c *Cluster) DialTCP(ctx context.Context, opt AttemptOptions) (net.Conn, *Host, error) {
	return nil, nil, ErrNoHealthyUpstream
}

// RoundTrip sends one attempt of req to an endpoint it picks, enforcing
// the cluster's circuit breakers, and records the outcome for outlier
// detection. Closing the response body releases the request's slot.
func (c *Cluster) RoundTrip(ctx context.Context, req *http.Request, opt AttemptOptions) (*http.Response, *Host, error) {
	return nil, nil, ErrNoHealthyUpstream
}

// TryRetry reserves a slot under the maxRetries circuit breaker; false
// means the retry must not happen (flag UO). Call the returned release
// when the retry ends.
func (c *Cluster) TryRetry() (release func(), ok bool) { return func() {}, true }
