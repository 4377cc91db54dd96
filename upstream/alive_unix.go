//go:build unix

package upstream

import (
	"crypto/tls"
	"net"
	"syscall"
)

// alive reports whether an idle connection may carry another request: the
// peer has not closed it, reset it, or (plaintext) sent unsolicited bytes.
// It peeks with one non-blocking recv, so the common idle-close race (the
// server's keep-alive timeout closed it while it sat in the pool) is caught
// before a request is written. TLS connections may hold post-handshake
// records (session tickets), so pending bytes do not condemn them.
func alive(conn net.Conn, isTLS bool) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return false
	case rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK:
		return true
	case rerr != nil:
		return false
	case n == 0:
		return false // EOF: the peer closed
	default:
		return isTLS
	}
}
