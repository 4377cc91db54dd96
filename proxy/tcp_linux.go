package proxy

import (
	"net"

	"golang.org/x/sys/unix"
)

// lastDataAge returns how long ago c last received data, from the
// kernel's TCP_INFO (tcpi_last_data_recv, milliseconds). ok is false
// when the kernel cannot say.
func lastDataAge(c *net.TCPConn) (ms uint32, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if cerr != nil || err != nil {
		return 0, false
	}
	return info.Last_data_recv, true
}
