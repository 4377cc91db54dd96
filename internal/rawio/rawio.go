// Package rawio reads and writes TCP sockets with raw system calls.
//
// Go's net package enters every read and write through the scheduler
// (entersyscall), which wakes sysmon from its idle sleep whenever a
// syscall follows a quiet moment. On a proxy that runs with one P and
// sits idle between requests, that is a futex wake-up, a sysmon tick
// (nanosleep) and two context switches per request. A non-blocking
// socket's read or write cannot block — it answers EAGAIN instead — so
// it may skip the scheduler, as the runtime's own netpoller does; the
// wait for readiness still goes through the netpoller (syscall.RawConn).
package rawio

import (
	"io"
	"net"
	"syscall"
)

// Conn is a *net.TCPConn whose Read and Write make raw system calls.
// One reader and one writer may use it at a time, as with any stream.
type Conn struct {
	*net.TCPConn
	rc     syscall.RawConn
	rd, wr op
}

// op is one direction's pending call, with its callback bound once.
type op struct {
	p   []byte
	n   int
	err error
	fn  func(uintptr) bool
}

// Wrap returns c as a *Conn when it is a *net.TCPConn on a platform with
// raw calls, and c itself otherwise (and under the race detector: see
// raceBuild).
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !Supported || raceBuild {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	rw := &Conn{TCPConn: tc, rc: rc}
	rw.rd.fn, rw.wr.fn = rw.read, rw.write
	return rw
}

// Unwrap returns the *net.TCPConn under a *Conn (so io.Copy can splice),
// and c itself otherwise.
func Unwrap(c net.Conn) net.Conn {
	if rw, ok := c.(*Conn); ok {
		return rw.TCPConn
	}
	return c
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rd.p, c.rd.n, c.rd.err = p, 0, nil
	err := c.rc.Read(c.rd.fn)
	c.rd.p = nil
	switch {
	case err != nil:
		return 0, err
	case c.rd.err != nil:
		return 0, c.rd.err
	case c.rd.n == 0:
		return 0, io.EOF
	}
	return c.rd.n, nil
}

func (c *Conn) read(fd uintptr) bool {
	for {
		n, errno := SysRead(fd, c.rd.p)
		switch errno {
		case 0:
			c.rd.n = n
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.rd.err = errno
		}
		return true
	}
}

// Write implements net.Conn: it writes p whole, waiting for the socket
// to drain when it is full.
func (c *Conn) Write(p []byte) (int, error) {
	c.wr.p, c.wr.n, c.wr.err = p, 0, nil
	err := c.rc.Write(c.wr.fn)
	n := c.wr.n
	c.wr.p = nil
	if err == nil {
		err = c.wr.err
	}
	return n, err
}

func (c *Conn) write(fd uintptr) bool {
	for c.wr.n < len(c.wr.p) {
		n, errno := SysWrite(fd, c.wr.p[c.wr.n:])
		switch errno {
		case 0:
			c.wr.n += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.wr.err = errno
			return true
		}
	}
	return true
}
