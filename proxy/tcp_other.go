//go:build !linux

package proxy

import "net"

func lastDataAge(c *net.TCPConn) (ms uint32, ok bool) { return 0, false }
