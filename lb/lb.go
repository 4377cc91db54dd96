// Package lb picks an endpoint for one request or connection, with Envoy's
// policies as Istio configures them: least request (power of two choices),
// weighted round robin, weighted random, ring hash and Maglev.
//
// A Picker is immutable: build one with New from a snapshot of endpoints and
// build a new one when the endpoints, their weights or their health change
// (grpc-go's rule: a new picker from the snapshot every time the state
// changes). Available applies Envoy's panic threshold to choose which
// endpoints to build it from; PickExcept adds Envoy's previous_hosts retry
// predicate. The package is pure: no sockets, no net/http.
package lb

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// A Picker chooses an endpoint for one request or connection. Pick never
// blocks on I/O, allocates nothing and is safe for concurrent use; ok is false
// when the picker holds no endpoint (the caller answers 503, flag UH).
//
// hash is read only by the consistent-hash policies (RingHash, Maglev); the
// others ignore it. A request without the hash key gets a random hash, as in
// Envoy, which makes the choice random.
type Picker interface {
	Pick(hash uint64) (ep Endpoint, ok bool)
}

// Endpoint is one upstream address as the balancer sees it. It is a small
// value, copied freely; the counter it points at is shared.
type Endpoint struct {
	// Addr is the endpoint's "host:port". Ring hash and Maglev hash it to
	// place the endpoint, as Envoy hashes the address string, and PickExcept
	// compares it to the addresses already tried.
	Addr string

	// Weight is the endpoint's load-balancing weight; zero means 1.
	Weight uint32

	// Active, if not nil, is the number of requests in flight to the
	// endpoint. The caller owns it: it increments the counter when a request
	// starts and decrements it when the request ends. Only LeastRequest reads
	// it; nil counts as zero.
	Active *atomic.Int64
}

// weight returns the endpoint's effective weight, at least 1.
func (e Endpoint) weight() uint64 {
	if e.Weight == 0 {
		return 1
	}
	return uint64(e.Weight)
}

func (e Endpoint) active() int64 {
	if e.Active == nil {
		return 0
	}
	return e.Active.Load()
}

// Policy names a load-balancing algorithm. The zero value is LeastRequest,
// Istio's default since 1.14 when a DestinationRule sets none.
type Policy uint8

// The policies, as Istio's DestinationRule loadBalancer names them.
const (
	// LeastRequest (and the deprecated LEAST_CONN) is power of two choices
	// among equal weights, EDF on weight/(active+1) otherwise.
	LeastRequest Policy = iota
	// RoundRobin is round robin, in Envoy's EDF order when weights differ.
	RoundRobin
	// Random picks at random, in proportion to weight.
	Random
	// RingHash is consistentHash on a ketama ring (Istio's default
	// consistent-hash algorithm).
	RingHash
	// Maglev is consistentHash with maglev.
	Maglev
	// Passthrough is the original destination: no endpoint list and no
	// picker; the caller connects where the connection was going.
	Passthrough
)

var policyNames = [...]string{"LEAST_REQUEST", "ROUND_ROBIN", "RANDOM", "RING_HASH", "MAGLEV", "PASSTHROUGH"}

// String returns the policy's Envoy name, e.g. "LEAST_REQUEST".
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", p)
}

// Envoy's defaults and limits, as Istio sets them.
const (
	// DefaultMinimumRingSize is the ring size Istio sets explicitly for
	// consistentHash without ringHash.minimumRingSize.
	DefaultMinimumRingSize = 1024
	// DefaultMaximumRingSize is Envoy's maximum_ring_size default (8M).
	DefaultMaximumRingSize = 8 * 1024 * 1024
	// DefaultMaglevTableSize is Envoy's Maglev table size; it must be prime.
	DefaultMaglevTableSize = 65537
	// MaxMaglevTableSize bounds maglev.tableSize (Envoy: prime < 5000011).
	MaxMaglevTableSize = 5000011
	// ChoiceCount is least request's number of random choices (Envoy's
	// choice_count default, which Istio does not change).
	ChoiceCount = 2
)

// ErrPassthrough is returned by New for the Passthrough policy, which has no
// picker: the caller dials the original destination.
var ErrPassthrough = errors.New("lb: PASSTHROUGH has no picker; use the original destination")

// Config selects and tunes a policy. The zero value is least request with
// Envoy's defaults and the package's random source.
type Config struct {
	// Policy is the algorithm; zero is LeastRequest.
	Policy Policy

	// MinimumRingSize is the least number of entries on a RingHash ring;
	// zero means DefaultMinimumRingSize.
	MinimumRingSize uint64

	// MaximumRingSize caps the RingHash ring; zero means
	// DefaultMaximumRingSize.
	MaximumRingSize uint64

	// MaglevTableSize is the Maglev lookup table size, a prime; zero means
	// DefaultMaglevTableSize.
	MaglevTableSize uint64

	// Rand returns uniformly random 64-bit values. It must be safe for
	// concurrent use if the Picker is. Nil means math/rand/v2's Uint64.
	// Tests pass a seeded source to make picks deterministic.
	Rand func() uint64
}

// New builds a Picker over eps with cfg's policy. It copies eps; the caller
// may reuse the slice. An empty eps gives a picker whose Pick reports ok
// false. New returns ErrPassthrough for Passthrough and an error for an
// out-of-range ring or table size.
func New(cfg Config, eps []Endpoint) (Picker, error) {
	rnd := cfg.Rand
	if rnd == nil {
		rnd = rand.Uint64
	}
	if cfg.Policy == Passthrough {
		return nil, ErrPassthrough
	}
	if cfg.Policy > Passthrough {
		return nil, fmt.Errorf("lb: unknown policy %d", cfg.Policy)
	}
	if len(eps) == 0 {
		return empty{}, nil
	}
	eps = append([]Endpoint(nil), eps...)
	switch cfg.Policy {
	case RoundRobin:
		return newRoundRobin(eps, rnd), nil
	case Random:
		return newRandom(eps, rnd), nil
	case RingHash:
		return newRingHash(eps, cfg.MinimumRingSize, cfg.MaximumRingSize)
	case Maglev:
		return newMaglev(eps, cfg.MaglevTableSize)
	default:
		return newLeastRequest(eps, rnd), nil
	}
}

// empty is the picker over no endpoints.
type empty struct{}

func (empty) Pick(uint64) (Endpoint, bool) { return Endpoint{}, false }

// equalWeights reports whether every endpoint has the same effective weight.
func equalWeights(eps []Endpoint) bool {
	for _, e := range eps[1:] {
		if e.weight() != eps[0].weight() {
			return false
		}
	}
	return true
}

// below returns a uniformly random integer in [0, n) from r, by Lemire's
// multiply-shift reduction. n must be > 0.
func below(r uint64, n uint64) uint64 {
	hi, _ := bits.Mul64(r, n)
	return hi
}
