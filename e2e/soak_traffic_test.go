package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// runTraffic runs every kind of soak traffic until end.
// A request counts as hit by a fault when a backend was down as it began
// or a backend was killed or restarted while it ran.
func runTraffic(ctx context.Context, c *soakClients, s *soakStats, kills, down *atomic.Int64, end time.Time) {
	kinds := []struct {
		name    string
		workers int
		do      func() error
	}{
		{"http/1.1", 2, func() error { return c.get(c.h1, "http://web:8000/") }},
		{"http/2", 2, func() error { return c.get(c.h2, "http://web:8000/") }},
		{"grpc", 2, c.grpc},
		{"tcp", 1, c.tcp},
		{"slow upload", 1, c.slowUpload},
		{"slow reader", 1, c.slowRead},
	}
	var wg sync.WaitGroup
	for _, k := range kinds {
		for range k.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10_000_000 && time.Now().Before(end) && ctx.Err() == nil; i++ {
					k0, d0 := kills.Load(), down.Load()
					err := k.do()
					s.add(k.name, err, d0 > 0 || kills.Load() != k0)
				}
			}()
		}
	}
	wg.Wait()
}

func (c *soakClients) get(cl *http.Client, u string) error {
	resp, err := cl.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || string(b) != "ok" {
		return fmt.Errorf("%s %q", resp.Status, b)
	}
	return nil
}

func (c *soakClients) grpc() error {
	req, _ := http.NewRequest("POST", "http://grpc:9000/soak.Echo/Call", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := c.h2.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if st := resp.Trailer.Get("Grpc-Status") + resp.Header.Get("Grpc-Status"); resp.StatusCode != 200 || st != "0" {
		return fmt.Errorf("%s grpc-status %q %q", resp.Status, st, resp.Header.Get("Grpc-Message"))
	}
	return nil
}

// tcp tunnels to the echo server with CONNECT (passthrough, ALLOW_ANY)
// and checks the echo. It is paced (about 100 tunnels a second) so the
// TIME_WAIT sockets of two loopback connections per tunnel stay well
// inside the ephemeral port range: unpaced, a 10 minute soak exhausts it
// and dials fail with EADDRNOTAVAIL, which is the machine's limit, not
// remora's.
func (c *soakClients) tcp() error {
	pace := time.NewTimer(10 * time.Millisecond)
	defer func() { <-pace.C }()
	conn, err := net.DialTimeout("tcp", c.proxy, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(c.perCall))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", c.echo, c.echo)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return errors.New("CONNECT: " + resp.Status)
	}
	if _, err := conn.Write(c.tcpBytes); err != nil {
		return err
	}
	got := make([]byte, len(c.tcpBytes))
	if _, err := io.ReadFull(br, got); err != nil {
		return err
	}
	if !bytes.Equal(got, c.tcpBytes) {
		return errors.New("echo differs")
	}
	return nil
}

// slowUpload sends an 8 KiB body over about 0.8s.
func (c *soakClients) slowUpload() error {
	req, _ := http.NewRequest("POST", "http://web:8000/upload", &slowBody{left: 8 << 10, pause: 50 * time.Millisecond})
	resp, err := c.h1.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && (resp.StatusCode != 200 || string(b) != "ok") {
		err = fmt.Errorf("%s %q", resp.Status, b)
	}
	return err
}

// slowRead reads a 256 KiB answer 16 KiB at a time, pausing between.
func (c *soakClients) slowRead() error {
	resp, err := c.h1.Get("http://web:8000/big")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 16<<10)
	var n int64
	for range 1000 {
		m, err := io.ReadFull(resp.Body, buf)
		n += int64(m)
		if err == io.EOF || err == io.ErrUnexpectedEOF && n == 256<<10 {
			break
		}
		if err != nil {
			return err
		}
		tm := time.NewTimer(20 * time.Millisecond)
		<-tm.C
	}
	if resp.StatusCode != 200 || n != 256<<10 {
		return fmt.Errorf("%s, %d bytes", resp.Status, n)
	}
	return nil
}
