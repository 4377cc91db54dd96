package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server's end.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	w := Wrap(c)
	if _, ok := w.(*Conn); !ok && Supported && !raceBuild {
		t.Fatalf("Wrap gave %T", w)
	}
	return w, s
}

func TestReadWriteLargeAndEOF(t *testing.T) {
	c, s := pair(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB: the socket fills, Write waits
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(s)
		done <- b
	}()
	if n, err := c.Write(want); err != nil || n != len(want) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	if got := <-done; !bytes.Equal(got, want) {
		t.Fatalf("server read %d bytes, want %d", len(got), len(want))
	}
	go func() { s.Write([]byte("pong")); s.Close() }()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "pong" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
}

func TestDeadlineAndClose(t *testing.T) {
	c, _ := pair(t)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("deadline took %v", d)
	}
	c.SetReadDeadline(time.Time{})
	go func() { time.Sleep(50 * time.Millisecond); c.Close() }()
	if _, err := c.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read on a closed conn: %v", err)
	}
	if Unwrap(c) == c && Supported && !raceBuild {
		t.Fatal("Unwrap returned the wrapper")
	}
}

func TestWrapLeavesOthers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a || Unwrap(a) != a {
		t.Fatal("a pipe was wrapped")
	}
}
