package tcpbulk

import (
	"net"
	"os"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestSendThroughProxy moves bytes client → Proxy → Sink and checks the
// sink's count comes back through the proxy's half-closed path.
func TestSendThroughProxy(t *testing.T) {
	sink, proxy := listen(t), listen(t)
	go Sink(sink)
	go Proxy(proxy, sink.Addr().String())
	for _, n := range []int64{0, 1, 3<<20 + 7} {
		c, err := net.Dial("tcp", proxy.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		el, err := Send(c.(*net.TCPConn), n)
		c.Close()
		if err != nil || el <= 0 {
			t.Errorf("Send(%d) = %v, %v; want a positive time, nil", n, el, err)
		}
	}
}

func TestCPUTimes(t *testing.T) {
	if u, s := CPUTimes(0); u != 0 || s != 0 {
		t.Errorf("CPUTimes(0) = %v, %v; want 0, 0", u, s)
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	if u, s := CPUTimes(os.Getpid()); u+s <= 0 {
		t.Errorf("CPUTimes(self) = %v, %v after 50ms of spinning; want > 0", u, s)
	}
}

func TestRate(t *testing.T) {
	mib, cpu := Rate(2<<30, 2*time.Second, time.Second)
	if mib != 1024 || cpu != 0.5 {
		t.Errorf("Rate(2 GiB, 2s, 1s) = %v, %v; want 1024, 0.5", mib, cpu)
	}
}
