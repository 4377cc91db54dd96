package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flappy is a backend on a fixed loopback port that the soak kills
// (closing every connection, as a crashed process would) and restarts.
type flappy struct {
	addr    string
	handler http.Handler
	h2c     bool
	mu      sync.Mutex
	srv     *http.Server
	// kills counts fault events (kills and restarts); down counts
	// backends currently down. Both are shared by all backends.
	kills *atomic.Int64
	down  *atomic.Int64
}

func (f *flappy) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the port may linger a moment after a kill
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		tm := time.NewTimer(20 * time.Millisecond)
		<-tm.C
	}
	if err != nil {
		t.Errorf("restart %s: %v", f.addr, err)
		return
	}
	srv := &http.Server{Handler: f.handler, ReadHeaderTimeout: 10 * time.Second}
	if f.h2c {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = p
	}
	f.mu.Lock()
	if f.srv == nil && f.kills.Load() > 0 {
		f.down.Add(-1)
		f.kills.Add(1)
	}
	f.srv = srv
	f.mu.Unlock()
	go srv.Serve(ln)
}

// kill closes the server and every connection it has.
func (f *flappy) kill() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		f.down.Add(1)
		f.kills.Add(1)
		srv.Close()
	}
}

// webHandler answers "ok", streams /big slowly enough for slow readers,
// and reads request bodies whole.
func webHandler(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	if r.URL.Path == "/big" {
		w.Header().Set("Content-Length", strconv.Itoa(256<<10))
		chunk := strings.Repeat("x", 16<<10)
		for range 16 {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		return
	}
	io.WriteString(w, "ok")
}

// grpcHandler answers a unary gRPC call: one empty message, grpc-status 0.
func grpcHandler(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		return
	}
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status")
	w.WriteHeader(200)
	w.Write([]byte{0, 0, 0, 0, 0})
	w.Header().Set("Grpc-Status", "0")
}

// echoServer echoes TCP connections until ctx ends.
func echoServer(t *testing.T, ctx context.Context) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// slowBody yields n bytes in small pieces over about d.
type slowBody struct {
	left  int
	pause time.Duration
}

func (s *slowBody) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	tm := time.NewTimer(s.pause)
	<-tm.C
	n := min(len(p), 512, s.left)
	for i := range n {
		p[i] = 'u'
	}
	s.left -= n
	return n, nil
}
