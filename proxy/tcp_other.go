//go:build !linux

package proxy

import (
	"io"
	"net"
)

func lastDataAge(c *net.TCPConn) (ms uint32, ok bool) { return 0, false }

// spliceCopy copies src to dst until EOF with io.Copy (the runtime
// chooses the fastest path this platform has), calling moved for every
// read.
func spliceCopy(dst, src *net.TCPConn, moved func(n int64)) error {
	_, err := io.Copy(dst, &activityReader{r: src, moved: moved})
	return err
}
