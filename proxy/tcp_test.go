package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// forwarded starts ForwardTCP between two loopback connections and
// returns the client end, the server end, and the result channel.
func forwarded(t *testing.T, idle time.Duration) (client, server net.Conn, res chan TCPResult) {
	t.Helper()
	client, down := tcpPair(t)
	up, server := tcpPair(t)
	res = make(chan TCPResult, 1)
	go func() { res <- ForwardTCP(down, up, idle) }()
	return client, server, res
}

func waitResult(t *testing.T, res chan TCPResult, within time.Duration) TCPResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(within):
		t.Fatalf("ForwardTCP still running after %v", within)
	}
	return TCPResult{}
}

func TestForwardTCPHalfClose(t *testing.T) {
	client, server, res := forwarded(t, -1)
	io.WriteString(client, "ping")
	client.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "ping" {
		t.Fatalf("server read %q, %v; want %q, EOF", got, err, "ping")
	}
	// The server can still answer after the client's half-close.
	io.WriteString(server, "pong!")
	server.Close()
	got, err = io.ReadAll(client)
	if err != nil || string(got) != "pong!" {
		t.Fatalf("client read %q, %v; want %q, EOF", got, err, "pong!")
	}
	r := waitResult(t, res, 5*time.Second)
	if r.Received != 4 || r.Sent != 5 || r.IdleTimeout || r.Err != nil {
		t.Errorf("result = %+v; want Received 4, Sent 5, no idle timeout, no error", r)
	}
}

func TestForwardTCPBulkSplice(t *testing.T) {
	client, server, res := forwarded(t, 0)
	const size = 3<<20 + 12345 // several full splice pipes and a partial one
	payload := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	go func() {
		client.Write(payload)
		client.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(server)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("server read %d bytes, %v; want %d identical bytes", len(got), err, size)
	}
	server.Close()
	io.ReadAll(client)
	if r := waitResult(t, res, 5*time.Second); r.Received != size {
		t.Errorf("Received = %d; want %d", r.Received, size)
	}
}

func TestForwardTCPPendingBytes(t *testing.T) {
	client, down := tcpPair(t)
	up, server := tcpPair(t)
	pc := &PeekedConn{Conn: down, pending: []byte("peeked:")}
	res := make(chan TCPResult, 1)
	go func() { res <- ForwardTCP(pc, up, -1) }()
	io.WriteString(client, "rest")
	client.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(server)
	if string(got) != "peeked:rest" {
		t.Errorf("server read %q; want %q", got, "peeked:rest")
	}
	server.Close()
	if r := waitResult(t, res, 5*time.Second); r.Received != int64(len("peeked:rest")) {
		t.Errorf("Received = %d; want %d", r.Received, len("peeked:rest"))
	}
}

func TestForwardTCPResetClosesBoth(t *testing.T) {
	client, server, res := forwarded(t, -1)
	server.(*net.TCPConn).SetLinger(0)
	server.Close() // RST
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(client); err != nil {
		t.Logf("client saw %v", err)
	}
	waitResult(t, res, 5*time.Second)
}

func TestForwardTCPIdleTimeout(t *testing.T) {
	const idle = 150 * time.Millisecond
	client, server, res := forwarded(t, idle)
	// Keep it busy for several idle periods: it must stay open.
	buf := make([]byte, 1)
	deadline := time.Now().Add(4 * idle)
	var last time.Time
	for i := 0; time.Now().Before(deadline) && i < 100; i++ {
		if _, err := client.Write([]byte{'x'}); err != nil {
			t.Fatalf("write %d: %v (closed while active)", i, err)
		}
		server.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.ReadFull(server, buf); err != nil {
			t.Fatalf("read %d: %v (closed while active)", i, err)
		}
		last = time.Now()
		time.Sleep(idle / 5)
	}
	select {
	case r := <-res:
		t.Fatalf("closed while active: %+v", r)
	default:
	}
	r := waitResult(t, res, 10*idle)
	if !r.IdleTimeout {
		t.Errorf("IdleTimeout = false; want true")
	}
	// The kernel's TCP_INFO ages have jiffy resolution (up to 10ms).
	if d := time.Since(last); d < idle-20*time.Millisecond {
		t.Errorf("closed %v after the last byte; want about %v", d, idle)
	}
	client.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := client.Read(buf); err == nil {
		t.Errorf("client still open after the idle timeout")
	}
}

func TestForwardTCPPipes(t *testing.T) {
	// net.Pipe has no half-close: EOF in one direction closes both.
	client, down := net.Pipe()
	up, server := net.Pipe()
	res := make(chan TCPResult, 1)
	go func() { res <- ForwardTCP(down, up, time.Minute) }()
	go func() { client.Write([]byte("abc")); client.Close() }()
	got, _ := io.ReadAll(server)
	if string(got) != "abc" {
		t.Errorf("server read %q; want %q", got, "abc")
	}
	if r := waitResult(t, res, 5*time.Second); r.Received != 3 {
		t.Errorf("Received = %d; want 3", r.Received)
	}
}
