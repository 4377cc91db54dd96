//go:build !linux

package proxy

import "net"

func lastDataAge(c *net.TCPConn) (ms uint32, ok bool) { return 0, false }

// spliceCopy is copyCounting where the kernel splice loop is not
// built.
func spliceCopy(dst, src *net.TCPConn, moved func(n int64)) error {
	return copyCounting(dst, src, moved)
}
