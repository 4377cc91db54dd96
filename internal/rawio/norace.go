//go:build !race

package rawio

// raceBuild is false outside the race detector.
const raceBuild = false
