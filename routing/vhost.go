package routing

import "sort"

// VirtualHost is one compiled virtual host of a listener port: the domains
// it answers and its match blocks in order. It is immutable.
type VirtualHost struct {
	// Name is "<first domain>:<port>", as Istio names virtual hosts.
	Name string
	// Port is the listener port (0: every port of a gateway).
	Port uint32
	// Domains are the lower-case host names (and "*.suffix" wildcards,
	// VIPs and aliases) that select this virtual host.
	Domains []string
	// VirtualServices are the "namespace/name" keys of the
	// VirtualServices whose rules it holds; empty for a default host.
	VirtualServices []string

	blocks []block
	idx    *blockIndex
}

// Routes returns the distinct routes of v in match order.
func (v *VirtualHost) Routes() []*Route {
	var out []*Route
	for i := range v.blocks {
		if r := v.blocks[i].route; len(out) == 0 || out[len(out)-1] != r {
			out = append(out, r)
		}
	}
	return out
}

// indexMin is the block count from which a virtual host gets an index.
const indexMin = 8

// maxLists bounds the candidate lists merged per request; more fall back
// to a linear scan.
const maxLists = 32

// blockIndex finds the blocks whose uri condition can hold for a path
// without testing every block: case-sensitive exact and prefix uri
// conditions are looked up by value, regexes by their literal prefix, the
// rest are always candidates.
type blockIndex struct {
	exact   map[string][]int32
	prefix  map[string][]int32
	lengths []int // distinct prefix lengths, ascending
	always  []int32
}

func buildIndex(blocks []block) *blockIndex {
	if len(blocks) < indexMin {
		return nil
	}
	x := &blockIndex{exact: map[string][]int32{}, prefix: map[string][]int32{}}
	seen := map[int]bool{}
	for i := range blocks {
		b := &blocks[i]
		switch {
		case b.hasURI && !b.uri.fold && b.uri.kind == matchExact:
			x.exact[b.uri.s] = append(x.exact[b.uri.s], int32(i))
		case b.hasURI && !b.uri.fold && b.uri.s != "" && (b.uri.kind == matchPrefix || b.uri.kind == matchRegex):
			x.prefix[b.uri.s] = append(x.prefix[b.uri.s], int32(i))
			if !seen[len(b.uri.s)] {
				seen[len(b.uri.s)] = true
				x.lengths = append(x.lengths, len(b.uri.s))
			}
		default:
			x.always = append(x.always, int32(i))
		}
	}
	sort.Ints(x.lengths)
	return x
}

// find returns the index of the first block matching req, or -1.
func (v *VirtualHost) find(req *Request, path string) int {
	if v.idx != nil {
		var lists [maxLists][]int32
		if n, ok := v.idx.candidates(path, &lists); ok {
			return v.merge(req, path, lists[:n])
		}
	}
	for i := range v.blocks {
		if v.blocks[i].match(req, path) {
			return i
		}
	}
	return -1
}

// candidates fills lists with the sorted block lists that may match path;
// ok is false when there are more than maxLists.
func (x *blockIndex) candidates(path string, lists *[maxLists][]int32) (n int, ok bool) {
	if l, found := x.exact[path]; found {
		lists[n] = l
		n++
	}
	for _, k := range x.lengths {
		if k > len(path) {
			break
		}
		if l, found := x.prefix[path[:k]]; found {
			if n == maxLists-1 {
				return 0, false
			}
			lists[n] = l
			n++
		}
	}
	if len(x.always) > 0 {
		lists[n] = x.always
		n++
	}
	return n, true
}

// merge tests the candidate blocks in rule order and returns the first
// that matches, or -1.
func (v *VirtualHost) merge(req *Request, path string, lists [][]int32) int {
	for {
		best, bi := -1, int32(len(v.blocks))
		for j := range lists {
			if l := lists[j]; len(l) > 0 && l[0] < bi {
				best, bi = j, l[0]
			}
		}
		if best < 0 {
			return -1
		}
		lists[best] = lists[best][1:]
		if v.blocks[bi].match(req, path) {
			return int(bi)
		}
	}
}

// portTable selects a virtual host on one listener port.
type portTable struct {
	exact  map[string]*VirtualHost
	suffix map[string]*VirtualHost // ".example.com" for "*.example.com"
	star   *VirtualHost
}

// maxHost is the longest host lower-cased without allocating.
const maxHost = 256

// lookup selects the virtual host for authority: exact (case-insensitive,
// port ignored), then the longest "*.suffix", then "*".
func (pt *portTable) lookup(authority string) *VirtualHost {
	h := hostOnly(authority)
	var buf [maxHost]byte
	b := lowerInto(buf[:], h)
	if b == nil {
		return pt.lookupLong(h)
	}
	if v := pt.exact[string(b)]; v != nil {
		return v
	}
	if len(pt.suffix) > 0 {
		for i := 1; i < len(b); i++ {
			if b[i] != '.' {
				continue
			}
			if v := pt.suffix[string(b[i:])]; v != nil {
				return v
			}
		}
	}
	return pt.star
}

// lookupLong is lookup for hosts longer than maxHost (allocates).
func (pt *portTable) lookupLong(h string) *VirtualHost {
	b := []byte(h)
	lowerInto(b, h)
	if v := pt.exact[string(b)]; v != nil {
		return v
	}
	for i := 1; i < len(b); i++ {
		if v := pt.suffix[string(b[i:])]; b[i] == '.' && v != nil {
			return v
		}
	}
	return pt.star
}

// add registers domain for v unless another virtual host has it; it
// reports whether it was added.
func (pt *portTable) add(domain string, v *VirtualHost) bool {
	switch {
	case domain == "*":
		if pt.star != nil {
			return false
		}
		pt.star = v
	case len(domain) > 2 && domain[:2] == "*.":
		if pt.suffix[domain[1:]] != nil {
			return false
		}
		pt.suffix[domain[1:]] = v
	default:
		if pt.exact[domain] != nil {
			return false
		}
		pt.exact[domain] = v
	}
	v.Domains = append(v.Domains, domain)
	return true
}

// has reports whether domain is taken.
func (pt *portTable) has(domain string) bool {
	switch {
	case domain == "*":
		return pt.star != nil
	case len(domain) > 2 && domain[:2] == "*.":
		return pt.suffix[domain[1:]] != nil
	}
	return pt.exact[domain] != nil
}
