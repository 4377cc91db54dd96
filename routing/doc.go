// Package routing compiles Istio VirtualServices into immutable match tables
// and picks a route for each HTTP request or TCP/TLS connection, with the
// semantics Envoy has under Istio: virtual hosts selected by Host/:authority
// (exact, then longest "*.suffix" wildcard, then "*"; port ignored,
// case-insensitive), rules matched in order with the first match winning,
// build-time filtering of source selectors and match ports, and Istio's
// defaults for routes, retries, faults and mirrors.
//
// Compile does all the work once; a *Table is immutable and safe for
// concurrent use. Per request the proxy fills a Request and calls Match:
//
//	res := table.Match(&routing.Request{Method: r.Method, Scheme: "http",
//		Authority: r.Host, Path: r.URL.RequestURI(), Header: r.Header, Port: port})
//	switch res.Outcome {
//	case routing.UnknownHost: // ALLOW_ANY: passthrough; REGISTRY_ONLY: 502
//	case routing.NotFound: // 404, flag NR
//	case routing.Matched:
//		rt := res.Route // Fault, CORS, Redirect, DirectResponse, then:
//		d := rt.Pick(rand) // weighted destination, d.Cluster
//		path, _ := res.RewritePath(r.URL.RequestURI())
//		host, _ := res.RewriteAuthority(d)
//		res.ApplyRequestHeaders(d, outHeader)
//	}
//
// Match allocates nothing on the common path. Randomness (weighted
// destinations, back-off jitter) is an input.
//
// Sidecars get one set of virtual hosts per registry port (plus 80 for
// VirtualService hosts outside the registry); gateways one per listener
// port in Context.Ports, with the Gateway server's host filtering left to
// the caller. Not implemented: delegate VirtualServices (rule skipped
// with a warning), prefix wildcards ("foo.*"), JWT claim headers
// (@request.auth.claims), L4 sourceSubnet, exportTo (the caller filters).
package routing
