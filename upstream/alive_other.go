//go:build !unix

package upstream

import "net"

// alive reports whether an idle connection may carry another request;
// without a peek this platform assumes it may.
func alive(net.Conn, bool) bool { return true }
