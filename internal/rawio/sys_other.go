//go:build !linux

package rawio

import "syscall"

// Supported says whether this platform has the raw calls: elsewhere
// Wrap returns connections unchanged.
const Supported = false

// SysRead is not available off Linux.
func SysRead(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }

// SysWrite is not available off Linux.
func SysWrite(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }

// SysPeek is not available off Linux.
func SysPeek(uintptr) (int, syscall.Errno) { return 0, syscall.ENOSYS }
