package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
)

// closingBackend answers one request per connection with a 200 that does
// not say "Connection: close", then closes: every reuse of its
// connections finds them closed.
func closingBackend(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	return ln.Addr().String(), conns
}

// TestResendOnClosedReuse: a connection reused soon after its release is
// not peeked; when the server had closed it, an idempotent bodiless
// request goes again on a new connection instead of failing.
func TestResendOnClosedReuse(t *testing.T) {
	addr, conns := closingBackend(t)
	m, _, _ := newTestManager(t) // the fake clock stands still: no peeks
	m.Update(snap(t, config.HTTP, snapshot.Policy{}, addr))
	c := m.Cluster(clusterName(""))
	for i := range 5 {
		if code, _, err := get(context.Background(), c, AttemptOptions{}); err != nil || code != 200 {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	if n := conns.Load(); n < 5 {
		t.Errorf("%d connections for 5 requests to a server closing each; want 5 or more", n)
	}
	if st := c.Status(); st.RqActive != 0 {
		t.Errorf("rq_active = %d; want 0", st.RqActive)
	}
}

// countingConn counts the writes to a connection.
type countingConn struct {
	net.Conn
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes++
	return c.Conn.Write(p)
}

// TestSmallBodyOneWrite: the head and a small in-memory body go in one
// write, without a writer goroutine.
func TestSmallBodyOneWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if conn, err := ln.Accept(); err == nil {
			io.Copy(io.Discard, conn)
			conn.Close()
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cc := &countingConn{Conn: conn}
	pc := &pconn{conn: cc}
	pc.bw = bufio.NewWriterSize(pc, 4096)
	req, _ := http.NewRequest("POST", "http://"+testHost+"/", strings.NewReader(strings.Repeat("x", 1000)))
	req.Header = proxyHeader()
	wrote, err := pc.send(req)
	if err != nil || wrote != nil || cc.writes != 1 {
		t.Errorf("send = %v, writer started %v, %d writes; want nil, false, 1", err, wrote != nil, cc.writes)
	}
}

// TestStreamedBodyHeadFirst: a streamed body's head is sent before the
// body, so a server may answer before the body exists.
func TestStreamedBodyHeadFirst(t *testing.T) {
	addr, _, _ := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		io.Copy(w, r.Body)
	}))
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, snapshot.Policy{}, addr))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+testHost+"/", pr)
	resp, _, err := m.Cluster(clusterName("")).RoundTrip(context.Background(), req, AttemptOptions{})
	if err != nil {
		t.Fatal(err) // the answer came before any of the body
	}
	go func() {
		io.WriteString(pw, "echo")
		pw.Close()
	}()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "echo" {
		t.Errorf("body %q, %v; want %q", b, err, "echo")
	}
}
