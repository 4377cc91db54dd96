package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestMaxConnections: beyond the cap a new connection is closed at once;
// when one ends, new connections are served again.
func TestMaxConnections(t *testing.T) {
	a := newBackend(t, "a", nil)
	p := startProxy(t, 80, serviceEntry("a.example", 80, "HTTP", a))
	l := &Listener{Name: "outbound", Store: p.store, Upstream: p.up, HTTP: p.h, MaxConnections: 2}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go l.Serve(ln)
	t.Cleanup(func() { l.Shutdown(t.Context()) })
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	held := []net.Conn{dial(), dial()}
	for l.Accepted() < 2 {
		tm := time.NewTimer(5 * time.Millisecond) // bounded by the conns' deadline below
		<-tm.C
	}
	over := dial()
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("third connection: %v; want closed (EOF)", err)
	}
	over.Close()
	if l.Overflowed() != 1 {
		t.Errorf("overflowed %d; want 1", l.Overflowed())
	}
	held[0].Close()
	var served bool
	for i := 0; i < 100 && !served; i++ { // until the listener sees the close
		c := dial()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		served = err == nil && resp.StatusCode == 200
		c.Close()
		if !served {
			tm := time.NewTimer(10 * time.Millisecond)
			<-tm.C
		}
	}
	if !served {
		t.Error("no connection served after one of the held ones closed")
	}
	held[1].Close()
}
