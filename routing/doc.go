// Package routing compiles Istio VirtualServices into immutable match tables
// and picks a route for each HTTP request or TCP/TLS connection, with the
// semantics Envoy has under Istio: virtual hosts selected by Host/:authority
// (exact, then longest "*.suffix" wildcard, then "*"), rules matched in
// order with the first match winning, build-time filtering of source
// selectors, and Istio's defaults for routes, retries, faults and mirrors.
//
// The package is pure: Compile does all the work once, and a *Table is
// immutable and safe for concurrent use. Match allocates nothing on the
// common path. Randomness (weighted destinations, back-off jitter) is an
// input.
package routing
