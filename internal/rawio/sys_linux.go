package rawio

import (
	"syscall"
	"unsafe"
)

// Supported says whether this platform has the raw calls.
const Supported = true

// SysRead reads a non-blocking socket without entering the scheduler.
func SysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// SysWrite writes to a non-blocking socket without entering the
// scheduler.
func SysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// SysPeek peeks at one byte of a socket without waiting or entering the
// scheduler: n is 1 when bytes are pending, 0 at EOF; EAGAIN means
// neither.
func SysPeek(fd uintptr) (int, syscall.Errno) {
	var b [1]byte
	n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return int(n), e
}
