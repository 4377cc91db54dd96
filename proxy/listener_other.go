//go:build !linux

package proxy

import "syscall"

func transparentControl(failed *error) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		*failed = ErrNotSupported
		return nil
	}
}
