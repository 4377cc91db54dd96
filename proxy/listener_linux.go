package proxy

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// transparentControl sets IP_TRANSPARENT and IPV6_TRANSPARENT on a
// listening socket so it accepts TPROXY connections. It needs
// CAP_NET_ADMIN; errors are reported to *failed and do not stop the bind.
func transparentControl(failed *error) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			err4 := unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
			var err6 error
			if network != "tcp4" {
				err6 = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
				if errors.Is(err6, unix.ENOPROTOOPT) || errors.Is(err6, unix.EINVAL) {
					err6 = nil // an IPv4-only socket
				}
			}
			if err := errors.Join(err4, err6); err != nil {
				*failed = fmt.Errorf("IP_TRANSPARENT: %w", err)
			}
		})
	}
}
