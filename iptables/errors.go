package iptables

import (
	"errors"
	"strings"
)

// ErrNotSupported is returned by Applier methods on systems other than Linux.
var ErrNotSupported = errors.New("iptables: not supported on this platform (Linux only)")

// ErrNeedNetAdmin is wrapped by errors caused by a lack of privilege:
// installing rules and routes needs CAP_NET_ADMIN.
var ErrNeedNetAdmin = errors.New("permission denied: needs CAP_NET_ADMIN (run as root or add the NET_ADMIN capability)")

// A MissingError means a binary the Applier runs is not installed.
type MissingError struct {
	// Binary is the program not found in PATH, e.g. "iptables-restore".
	Binary string
	// Package is the distribution package that provides it.
	Package string
}

// Error names the binary and the package to install.
func (e *MissingError) Error() string {
	return e.Binary + " not found in PATH: install the " + e.Package +
		" package (e.g. apt-get install " + e.Package + ")"
}

// permissionDenied reports whether a command's stderr says it lacked privilege.
func permissionDenied(stderr string) bool {
	for _, s := range []string{"Permission denied", "Operation not permitted", "you must be root"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}
