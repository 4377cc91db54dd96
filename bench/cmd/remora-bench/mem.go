package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"
)

// memResult is one proxy's memory, in KiB.
type memResult struct {
	name              string
	start, after, hwm int64 // RSS after start, after the load, peak
	idle0, idle1      int64 // RSS before and with the idle connections
	idleConns         int
	bigStart, bigLoad int64 // remora with 1,000 services: after start, after load
}

// idleConns is how many keep-alive connections scenario (g) holds open.
const idleConns = 10000

// memory records every proxy's RSS after the rounds, then holds
// idleConns keep-alive connections open to each, then measures remora
// with a 1,000-service config.
func (s *suite) memory() error {
	for _, t := range s.targets {
		if t.pid == 0 {
			continue
		}
		m := memResult{name: t.name, start: t.rss0}
		m.after, m.hwm = memKB(t.pid)
		s.logf("%s: idle connections", t.name)
		want := idleConns
		if s.quick {
			want = idleConns / 5
		}
		if t.name == "haproxy" {
			want = min(want, haproxyMaxConn()-100)
		}
		n, rss0, rss1, err := holdIdle(t, want)
		if err != nil {
			s.note(fmt.Sprintf("%s idle connections: %v", t.name, err))
		}
		m.idle0, m.idle1, m.idleConns = rss0, rss1, n
		if t.name == "remora" {
			if err := s.bigConfig(&m); err != nil {
				return err
			}
		}
		s.mem = append(s.mem, m)
	}
	return nil
}

// holdIdle opens n connections to t, sends one request on each (so each
// is a served keep-alive connection, not just an accepted socket), and
// reads t's RSS while they are all open and idle.
func holdIdle(t *target, n int) (opened int, before, with int64, err error) {
	before, _ = memKB(t.pid)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	req := []byte("GET / HTTP/1.1\r\nHost: " + benchHost + "\r\n\r\n")
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := oneRequest(t.addr, req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	time.Sleep(time.Second) // let the proxy settle (GC, idle pools)
	with, _ = memKB(t.pid)
	return len(conns), before, with, firstErr
}

func oneRequest(addr string, req []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		_, err = resp.Body.Read(make([]byte, 64<<10))
		resp.Body.Close()
		if resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	if err != nil && err.Error() != "EOF" {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// bigConfig starts a second remora with 1,000 more services (each with
// a VirtualService and a DestinationRule with subsets) and measures its
// RSS after start and after a short load.
func (s *suite) bigConfig(m *memResult) error {
	cfg := filepath.Join(s.dir, "mesh1k")
	var port int
	_, p, _ := net.SplitHostPort(s.backend)
	fmt.Sscanf(p, "%d", &port)
	if err := writeMesh(cfg, port, 1000); err != nil {
		return err
	}
	r, err := startRemora(s.remora, s.dir, "remora-1k", s.proxyCPU, cfg)
	if err != nil {
		return err
	}
	defer r.stop()
	time.Sleep(500 * time.Millisecond)
	m.bigStart, _ = memKB(r.pid())
	t := &target{name: "remora-1k", addr: r.addr, pid: r.pid()}
	if _, err := s.runLoad(t, loadSpec{qps: 1000, conns: 16, dur: 2 * time.Second, path: "/"}); err != nil {
		return err
	}
	m.bigLoad, _ = memKB(r.pid())
	return nil
}
