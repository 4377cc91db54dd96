package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
)

// breakerPolicy is maxConnections 1, http1MaxPendingRequests 1,
// maxRequestsPerConnection 1.
func breakerPolicy() snapshot.Policy {
	return snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{
		TCP:  &config.TCPSettings{MaxConnections: 1},
		HTTP: &config.HTTPSettings{HTTP1MaxPendingRequests: 1, MaxRequestsPerConnection: 1},
	}}
}

// gated answers 200 once a value arrives on release; entered reports each
// request reaching the handler.
func gated(entered chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "ok")
	})
}

func TestCircuitBreakerOverflowIsImmediate(t *testing.T) {
	entered, release := make(chan struct{}, 4), make(chan struct{})
	addr, _, _ := backend(t, gated(entered, release))
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, breakerPolicy(), addr))
	c := m.Cluster(clusterName(""))
	ctx := context.Background()

	errs := make(chan error, 2)
	go func() { _, _, err := get(ctx, c, AttemptOptions{}); errs <- err }()
	<-entered // request 1 holds the only connection
	go func() { _, _, err := get(ctx, c, AttemptOptions{}); errs <- err }()
	for i := 0; c.Status().RqPending != 1; i++ { // request 2 waits as pending
		if i > 1e6 {
			t.Fatal("second request never became pending")
		}
		time.Sleep(time.Microsecond)
	}
	// The third finds the connection and the pending queue full: it must
	// fail at once, while the first two are still blocked.
	if _, _, err := get(ctx, c, AttemptOptions{}); !errors.Is(err, ErrOverflow) {
		t.Fatalf("third request: err = %v; want ErrOverflow", err)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("queued request: %v", err)
		}
	}
	if st := c.Status(); st.PendingOverflow != 1 || st.CxActive != 0 || st.RqActive != 0 {
		t.Errorf("status = pending overflow %d, cx %d, rq %d; want 1, 0, 0", st.PendingOverflow, st.CxActive, st.RqActive)
	}
}

func TestCircuitBreakerUnderLoad(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(2 * time.Millisecond) // let requests overlap; not a timing assertion
		io.WriteString(w, "ok")
	})
	addr, conns, _ := backend(t, h)
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, breakerPolicy(), addr))
	c := m.Cluster(clusterName(""))

	run := func(clients int) (ok, overflow int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range 30 {
					code, _, err := get(context.Background(), c, AttemptOptions{})
					mu.Lock()
					switch {
					case errors.Is(err, ErrOverflow):
						overflow++
					case err == nil && code == 200:
						ok++
					default:
						t.Errorf("request: code %d, err %v", code, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return ok, overflow
	}
	if ok, overflow := run(1); ok != 30 || overflow != 0 {
		t.Errorf("1 client: %d ok, %d overflow; want 30, 0", ok, overflow)
	}
	if n := conns.Load(); n != 30 {
		t.Errorf("maxRequestsPerConnection 1: %d connections for 30 requests; want 30", n)
	}
	ok, overflow := run(3)
	if overflow == 0 || ok == 0 || ok+overflow != 90 {
		t.Errorf("3 clients: %d ok, %d overflow; want some of each, 90 in all", ok, overflow)
	}
	if st := c.Status(); st.CxActive != 0 || st.RqActive != 0 || st.RqPending != 0 {
		t.Errorf("after load: cx %d rq %d pending %d; want 0", st.CxActive, st.RqActive, st.RqPending)
	}
}

func TestMaxRequestsOverflow(t *testing.T) {
	entered, release := make(chan struct{}, 2), make(chan struct{})
	addr, _, _ := backend(t, gated(entered, release))
	m, _, _ := newTestManager(t)
	p := snapshot.Policy{ConnectionPool: &config.ConnectionPoolSettings{HTTP: &config.HTTPSettings{HTTP2MaxRequests: 1}}}
	m.Update(snap(t, config.HTTP, p, addr))
	c := m.Cluster(clusterName(""))
	done := make(chan error)
	go func() { _, _, err := get(context.Background(), c, AttemptOptions{}); done <- err }()
	<-entered
	if _, _, err := get(context.Background(), c, AttemptOptions{}); !errors.Is(err, ErrOverflow) {
		t.Errorf("second request: %v; want ErrOverflow", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.RqOverflow != 1 {
		t.Errorf("upstream_rq_overflow = %d; want 1", st.RqOverflow)
	}
}

func TestIdleConnReuse(t *testing.T) {
	addr, conns, srv := backend(t, status(200))
	m, clk, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, snapshot.Policy{}, addr))
	c := m.Cluster(clusterName(""))
	for range 5 {
		if code, _, err := get(context.Background(), c, AttemptOptions{}); err != nil || code != 200 {
			t.Fatalf("get: %d %v", code, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential requests used %d connections; want 1", n)
	}
	// The server closes the idle connection: the pool must notice and
	// dial again rather than fail the request.
	srv.CloseClientConnections()
	waitDead(t, c)
	// Idle long enough to be peeked before reuse: even a request that
	// could not be resent (it has a body) goes on a new connection.
	clk.Advance(peekAfter)
	req, _ := http.NewRequest("POST", "http://"+testHost+"/", strings.NewReader("x"))
	resp, _, err := c.RoundTrip(context.Background(), req, AttemptOptions{})
	if err != nil {
		t.Fatalf("POST after server closed the idle conn: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := conns.Load(); n != 2 {
		t.Errorf("connections = %d; want 2", n)
	}
}

// waitDead waits (bounded) until the cluster's idle connection sees the
// peer's close, so the test does not race the FIN.
func waitDead(t *testing.T, c *Cluster) {
	t.Helper()
	ep := c.view.Load().list[0]
	for i := 0; ; i++ {
		c.mu.Lock()
		dead := len(ep.idle) == 1 && !alive(ep.idle[0].conn, false)
		c.mu.Unlock()
		if dead {
			return
		}
		if i > 1e5 {
			t.Fatal("idle connection never saw the close")
		}
		time.Sleep(10 * time.Microsecond)
	}
}

func TestResetNotWrittenOnDeadConn(t *testing.T) {
	addr, _, _ := backend(t, status(200))
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, snapshot.Policy{}, addr))
	c := m.Cluster(clusterName(""))
	if _, _, err := get(context.Background(), c, AttemptOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := c.view.Load().list[0]
	c.mu.Lock()
	pc := c.takeIdleLocked(ep, "")
	c.mu.Unlock()
	if pc == nil {
		t.Fatal("no idle connection after a keep-alive exchange")
	}
	pc.conn.Close() // the idle-close race, decided before the write
	req, _ := http.NewRequest("GET", "http://"+testHost+"/", nil)
	_, err := pc.exchange(context.Background(), c.set.Load(), req)
	var re *ResetError
	if !errors.As(err, &re) || re.Written {
		t.Fatalf("exchange on a dead conn: %#v; want *ResetError with Written false", err)
	}
	if st := c.Status(); st.CxActive != 0 {
		t.Errorf("cx_active = %d after the reset; want 0", st.CxActive)
	}
}

func TestResetAfterWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // read the request, then hang up without answering
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 1024)
		conn.Read(buf)
		conn.Close()
	}()
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, snapshot.Policy{}, ln.Addr().String()))
	_, _, err = get(context.Background(), m.Cluster(clusterName("")), AttemptOptions{})
	var re *ResetError
	if !errors.As(err, &re) || !re.Written || re.Protocol {
		t.Fatalf("err = %#v; want *ResetError, Written, not Protocol", err)
	}
}

func TestChunkedBodyAndTrailers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.Write(b)
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", r.Trailer.Get("X-In"))
	})
	addr, _, _ := backend(t, h)
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, snapshot.Policy{}, addr))
	req, _ := http.NewRequest("POST", "http://"+testHost+"/", io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")))
	req.ContentLength = -1
	req.Trailer = http.Header{"X-In": {"42"}}
	resp, _, err := m.Cluster(clusterName("")).RoundTrip(context.Background(), req, AttemptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello world" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("body %q trailer %q; want %q, %q", b, resp.Trailer.Get("X-Sum"), "hello world", "42")
	}
	if got := req.Header.Get("User-Agent"); got != "" {
		t.Errorf("User-Agent = %q; RoundTrip must not add one", got)
	}
}

func TestNoUserAgentAdded(t *testing.T) {
	got := make(chan []string, 1)
	addr, _, _ := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Values("User-Agent")
	}))
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, snapshot.Policy{}, addr))
	if _, _, err := get(context.Background(), m.Cluster(clusterName("")), AttemptOptions{}); err != nil {
		t.Fatal(err)
	}
	if ua := <-got; len(ua) != 0 {
		t.Errorf("upstream saw User-Agent %q; want none", ua)
	}
}

func TestContextCancelWhilePending(t *testing.T) {
	entered, release := make(chan struct{}, 2), make(chan struct{})
	addr, _, _ := backend(t, gated(entered, release))
	m, _, _ := newTestManager(t)
	m.Update(snap(t, config.HTTP, breakerPolicy(), addr))
	c := m.Cluster(clusterName(""))
	done := make(chan error)
	go func() { _, _, err := get(context.Background(), c, AttemptOptions{}); done <- err }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := get(ctx, c, AttemptOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pending request: %v; want context.Canceled", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.RqPending != 0 || st.RqActive != 0 {
		t.Errorf("pending %d active %d; want 0, 0", st.RqPending, st.RqActive)
	}
}
