package lb

// Available returns the endpoints to build a Picker from, applying Envoy's
// panic threshold. healthy reports whether an endpoint may take traffic (not
// ejected by outlier detection); nil means all are healthy.
//
// If the healthy share of all endpoints, in percent by count, is below
// minHealthPercent, the cluster is in panic and Available returns all of them
// with inPanic true: traffic goes to ejected endpoints rather than nowhere.
// Otherwise it returns the healthy ones. minHealthPercent 0 (Istio's default
// once a DestinationRule has outlierDetection) disables panic, so when every
// endpoint is ejected the result is empty and the caller answers 503 with
// flag UH. Envoy's own default, without outlierDetection, is 50, but with no
// outlier detection every endpoint is healthy and the threshold never matters.
//
// Available returns a new slice (all itself when every endpoint is healthy);
// it is meant for picker rebuilds, not for each request. It is safe for
// concurrent use if healthy is.
func Available(all []Endpoint, healthy func(Endpoint) bool, minHealthPercent float64) (eps []Endpoint, inPanic bool) {
	if healthy == nil {
		return all, false
	}
	var ok []Endpoint
	for _, e := range all {
		if healthy(e) {
			ok = append(ok, e)
		}
	}
	if len(ok) == len(all) {
		return all, false
	}
	pct := 0.0
	if len(all) > 0 {
		pct = 100 * float64(len(ok)) / float64(len(all))
	}
	if pct < minHealthPercent {
		return all, true
	}
	return ok, false
}

// MaxReselectAttempts is how many picks PickExcept makes to find an endpoint
// not yet tried: Istio's host_selection_retry_max_attempts.
const MaxReselectAttempts = 5

// PickExcept picks an endpoint for a retry, avoiding the addresses in tried,
// as Envoy's previous_hosts retry predicate does. It asks p up to
// MaxReselectAttempts times; if every answer was tried already it returns the
// last one, so with a single endpoint the retry goes to the same one. For
// attempts after the first it perturbs hash the way Envoy's ring hash and
// Maglev do (hash ^ (2^64 - attempt)), so consistent-hash pickers can move
// too; other pickers ignore the hash and simply pick again.
//
// Istio omits the predicate on routes with consistent hashing; callers then
// call p.Pick directly. PickExcept allocates nothing and is safe for
// concurrent use.
func PickExcept(p Picker, hash uint64, tried []string) (Endpoint, bool) {
	var ep Endpoint
	for attempt := range uint64(MaxReselectAttempts) {
		h := hash
		if attempt > 0 {
			h ^= ^uint64(0) - attempt + 1
		}
		var ok bool
		if ep, ok = p.Pick(h); !ok {
			return Endpoint{}, false
		}
		if !contains(tried, ep.Addr) {
			return ep, true
		}
	}
	return ep, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
