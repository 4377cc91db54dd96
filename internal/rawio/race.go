//go:build race

package rawio

// raceBuild is set under the race detector, which learns the
// happens-before edges of network I/O from the net package's own read
// and write calls (internal/poll annotates them); raw calls would hide
// those edges and make correct programs look racy. Wrap steps aside.
const raceBuild = true
