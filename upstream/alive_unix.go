//go:build unix

package upstream

import (
	"crypto/tls"
	"net"
	"syscall"

	"github.com/remora-mesh/remora/internal/rawio"
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
	var n int
	var errno syscall.Errno
	err = rc.Read(func(fd uintptr) bool {
		n, errno = peek(fd) // raw: it cannot block, and skips waking sysmon
		return true
	})
	switch {
	case err != nil:
		return false
	case errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK:
		return true
	case errno != 0:
		return false
	case n == 0:
		return false // EOF: the peer closed
	default:
		return isTLS
	}
}

// peek looks at one pending byte without consuming it or waiting.
func peek(fd uintptr) (int, syscall.Errno) {
	if rawio.Supported {
		return rawio.SysPeek(fd)
	}
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if err == nil {
		return n, 0
	}
	if errno, ok := err.(syscall.Errno); ok {
		return n, errno
	}
	return n, syscall.EIO
}
