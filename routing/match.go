package routing

import (
	"fmt"
	"net/textproto"
	"regexp"
	"sort"
	"strings"

	"github.com/remora-mesh/remora/config"
)

// matchKind is the kind of a compiled StringMatch.
type matchKind uint8

const (
	matchAny    matchKind = iota // an empty StringMatch: any value (presence)
	matchExact                   // value equals s
	matchPrefix                  // value starts with s
	matchRegex                   // value fully matches re
)

// stringMatcher is a compiled config.StringMatch.
type stringMatcher struct {
	kind matchKind
	s    string // the value; for a regex, the literal prefix of every match
	re   *regexp.Regexp
	fold bool // exact and prefix compare case-insensitively
}

// compileStringMatch compiles m; fold makes exact and prefix matches
// case-insensitive (ignoreUriCase). A nil m, an empty one, and regex "*"
// match any value. Regexes must match the whole value, as Envoy's
// safe_regex does.
func compileStringMatch(m *config.StringMatch, fold bool) (stringMatcher, error) {
	switch {
	case m == nil:
		return stringMatcher{}, nil
	case m.Exact != nil:
		return stringMatcher{kind: matchExact, s: *m.Exact, fold: fold}, nil
	case m.Prefix != nil:
		return stringMatcher{kind: matchPrefix, s: *m.Prefix, fold: fold}, nil
	case m.Regex != nil && *m.Regex != "*":
		re, err := regexp.Compile(`^(?:` + *m.Regex + `)$`)
		if err != nil {
			return stringMatcher{}, fmt.Errorf("regex %q: %w", *m.Regex, err)
		}
		sm := stringMatcher{kind: matchRegex, re: re}
		// s is the literal every match starts with; a regex that is all
		// literal is an exact match.
		if un, err := regexp.Compile(*m.Regex); err == nil {
			var complete bool
			if sm.s, complete = un.LiteralPrefix(); complete {
				return stringMatcher{kind: matchExact, s: sm.s}, nil
			}
		}
		return sm, nil
	}
	return stringMatcher{}, nil
}

// match reports whether v satisfies m.
func (m *stringMatcher) match(v string) bool {
	switch m.kind {
	case matchExact:
		if m.fold {
			return strings.EqualFold(v, m.s)
		}
		return v == m.s
	case matchPrefix:
		if m.fold {
			return len(v) >= len(m.s) && strings.EqualFold(v[:len(m.s)], m.s)
		}
		return strings.HasPrefix(v, m.s)
	case matchRegex:
		return m.re.MatchString(v)
	}
	return true
}

// field says where a condition reads its value.
type field uint8

const (
	fieldHeader field = iota
	fieldMethod
	fieldScheme
	fieldAuthority
	fieldPath
	fieldQuery
)

// cond is one header, pseudo-header or query parameter condition.
type cond struct {
	field  field
	key    string // canonical header key or query parameter name
	m      stringMatcher
	invert bool // withoutHeaders: holds when absent or not matching
}

// eval reports whether c holds for req.
func (c *cond) eval(req *Request) bool {
	v, ok := c.value(req)
	if c.invert {
		if c.m.kind == matchAny {
			return !ok
		}
		// Envoy: invert_match with treat_missing_header_as_empty.
		return !c.m.match(v)
	}
	return ok && c.m.match(v)
}

func (c *cond) value(req *Request) (string, bool) {
	switch c.field {
	case fieldMethod:
		return req.Method, true
	case fieldScheme:
		return req.scheme(), true
	case fieldAuthority:
		return req.Authority, true
	case fieldPath:
		return req.Path, true
	case fieldQuery:
		return queryValue(req.rawQuery(), c.key)
	}
	return req.header(c.key)
}

// headerField maps a header name from a match to where its value lives:
// pseudo-headers and "host" read the request line fields.
func headerField(name string) (field, string) {
	switch strings.ToLower(name) {
	case ":method":
		return fieldMethod, ""
	case ":scheme":
		return fieldScheme, ""
	case ":authority", "host":
		return fieldAuthority, ""
	case ":path":
		return fieldPath, ""
	}
	return fieldHeader, textproto.CanonicalMIMEHeaderKey(name)
}

// block is one compiled HTTPMatchRequest of a rule: every condition must
// hold. A rule without match blocks compiles to one empty block.
type block struct {
	route  *Route
	name   string // route name, "<rule>.<match>" when both are set
	uri    stringMatcher
	hasURI bool
	conds  []cond
}

// catchAll reports whether b matches every request (Istio IsCatchAllRoute:
// prefix "/" or no uri, and no other condition).
func (b *block) catchAll() bool {
	if len(b.conds) > 0 {
		return false
	}
	return !b.hasURI || b.uri.kind == matchPrefix && b.uri.s == "/"
}

// match reports whether req satisfies b; path is req's path without query.
func (b *block) match(req *Request, path string) bool {
	if b.hasURI && !b.uri.match(path) {
		return false
	}
	for i := range b.conds {
		if !b.conds[i].eval(req) {
			return false
		}
	}
	return true
}

// prefixLen is how much of path the block's uri condition matched, for
// prefix rewrites: the prefix length for prefix matches, the whole path for
// exact and regex ones, and 1 ("/") when the block has no uri condition,
// as Istio translates it to prefix "/".
func (b *block) prefixLen(path string) int {
	switch {
	case !b.hasURI || b.uri.kind == matchAny:
		if strings.HasPrefix(path, "/") {
			return 1
		}
		return 0
	case b.uri.kind == matchPrefix:
		return len(b.uri.s)
	}
	return len(path)
}

// compileBlock compiles the runtime conditions of m (build-time filters
// are the caller's).
func compileBlock(m *config.HTTPMatchRequest) (block, error) {
	var b block
	var err error
	if m.URI != nil {
		b.hasURI = true
		if b.uri, err = compileStringMatch(m.URI, m.IgnoreURICase); err != nil {
			return b, fmt.Errorf("uri: %w", err)
		}
	}
	pseudo := []struct {
		f  field
		sm *config.StringMatch
	}{{fieldScheme, m.Scheme}, {fieldMethod, m.Method}, {fieldAuthority, m.Authority}}
	for _, p := range pseudo {
		if p.sm == nil {
			continue
		}
		sm, err := compileStringMatch(p.sm, false)
		if err != nil {
			return b, err
		}
		b.conds = append(b.conds, cond{field: p.f, m: sm})
	}
	if err := addConds(&b.conds, m.Headers, false, false); err != nil {
		return b, err
	}
	if err := addConds(&b.conds, m.WithoutHeaders, true, false); err != nil {
		return b, err
	}
	return b, addConds(&b.conds, m.QueryParams, false, true)
}

// addConds compiles a headers, withoutHeaders or queryParams map, sorted
// by name as Istio emits them. Header keys uri, scheme, method and
// authority are ignored, as Istio ignores them.
func addConds(dst *[]cond, ms map[string]config.StringMatch, invert, query bool) error {
	names := make([]string, 0, len(ms))
	for n := range ms {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sm := ms[n]
		m, err := compileStringMatch(&sm, false)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		c := cond{field: fieldQuery, key: n, m: m, invert: invert}
		if !query {
			switch strings.ToLower(n) {
			case "uri", "scheme", "method", "authority":
				continue
			}
			c.field, c.key = headerField(n)
		}
		*dst = append(*dst, c)
	}
	return nil
}
