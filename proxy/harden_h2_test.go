package proxy

import (
	"bufio"
	"encoding/binary"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// h2Conn is a raw HTTP/2 client connection for abuse tests.
type h2Conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialH2(t *testing.T, addr string) *h2Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, h2Preface)
	h := &h2Conn{c: c, br: bufio.NewReader(c)}
	h.frame(0x4, 0, 0, nil) // SETTINGS
	return h
}

func (h *h2Conn) frame(typ, flags byte, stream uint32, payload []byte) error {
	n := len(payload)
	hdr := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[5:], stream)
	_, err := h.c.Write(append(hdr, payload...))
	return err
}

// read returns the next frame's type, stream and payload.
func (h *h2Conn) read() (typ byte, stream uint32, payload []byte, err error) {
	var hdr [9]byte
	if _, err = io.ReadFull(h.br, hdr[:]); err != nil {
		return
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	payload = make([]byte, n)
	_, err = io.ReadFull(h.br, payload)
	return hdr[3], binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff, payload, err
}

// getHeaders is an HPACK block for GET http://a.example/.
var getHeaders = append([]byte{0x82, 0x86, 0x84, 0x41, 9}, "a.example"...)

func TestHTTP2Abuse(t *testing.T) {
	pw := &panicWatch{}
	log.SetOutput(pw)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	defer func() {
		if n := pw.panics.Load(); n > 0 {
			t.Errorf("%d handler panics", n)
		}
	}()
	a := newBackend(t, "a", nil)
	p := startProxy(t, 80, serviceEntry("a.example", 80, "HTTP", a))
	t.Run("settings", func(t *testing.T) {
		h := dialH2(t, p.addr)
		typ, _, pl, err := h.read()
		if err != nil || typ != 0x4 {
			t.Fatalf("first frame type %d, %v; want SETTINGS", typ, err)
		}
		got := map[uint16]uint32{}
		for i := 0; i+6 <= len(pl); i += 6 {
			got[binary.BigEndian.Uint16(pl[i:])] = binary.BigEndian.Uint32(pl[i+2:])
		}
		if got[0x3] != MaxConcurrentStreams || got[0x5] != MaxReadFrameSize {
			t.Errorf("SETTINGS %v; want MAX_CONCURRENT_STREAMS %d, MAX_FRAME_SIZE %d", got, MaxConcurrentStreams, MaxReadFrameSize)
		}
	})
	t.Run("oversized frame", func(t *testing.T) {
		h := dialH2(t, p.addr)
		h.frame(0x1, 0x4, 1, make([]byte, MaxReadFrameSize+1))
		if code := goaway(h); code != 0x6 {
			t.Errorf("GOAWAY code %d; want FRAME_SIZE_ERROR (6)", code)
		}
	})
	// A SETTINGS flood whose ACKs are never read: net/http stops reading
	// once its writes back up (TCP backpressure), so the flood costs only
	// the socket buffers; the connection stalls until the client leaves,
	// and everything else is served meanwhile.
	t.Run("settings flood", func(t *testing.T) {
		base := runtime.NumGoroutine()
		h := dialH2(t, p.addr)
		h.c.(*net.TCPConn).SetReadBuffer(4 << 10)
		h.c.SetWriteDeadline(time.Now().Add(3 * time.Second))
		batch := make([]byte, 0, 9*1000)
		for range 1000 {
			batch = append(batch, 0, 0, 0, 0x4, 0, 0, 0, 0, 0)
		}
		var err error
		n := 0
		for ; n < 2000 && err == nil; n++ { // up to 2M SETTINGS, never reading the ACKs
			_, err = h.c.Write(batch)
		}
		if code, _, _ := p.get(t, p.client(), "a.example", "/"); code != 200 {
			t.Errorf("during a SETTINGS flood: %d; want 200", code)
		}
		t.Logf("flood: %d000 SETTINGS frames written before %v", n, err)
		h.c.Close()
		waitGoroutines(t, base, 10)
	})
	t.Run("rapid reset", func(t *testing.T) {
		base := runtime.NumGoroutine()
		hits := a.hits.Load()
		h := dialH2(t, p.addr)
		go io.Copy(io.Discard, h.br)
		var err error
		for id := uint32(1); id < 4000 && err == nil; id += 2 {
			err = h.frame(0x1, 0x5, id, getHeaders)
			if err == nil {
				err = h.frame(0x3, 0, id, []byte{0, 0, 0, 0x8}) // RST_STREAM CANCEL
			}
		}
		h.c.Close()
		t.Logf("backend saw %d of 2000 reset requests", a.hits.Load()-hits)
		waitGoroutines(t, base, 10)
	})
	c := p.client()
	if code, _, _ := p.get(t, c, "a.example", "/"); code != 200 {
		t.Errorf("after HTTP/2 abuse: %d; want 200", code)
	}
}

// goaway reads frames until a GOAWAY and returns its error code (-1 when
// the connection ended without one).
func goaway(h *h2Conn) int {
	for range 100 {
		typ, _, pl, err := h.read()
		if err != nil {
			return -1
		}
		if typ == 0x7 && len(pl) >= 8 {
			return int(binary.BigEndian.Uint32(pl[4:]))
		}
	}
	return -1
}
