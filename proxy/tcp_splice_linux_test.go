package proxy

import (
	"bytes"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestSpliceCopyReusesPipes forwards many connections one after another:
// their pipes are reused or closed, so descriptors do not grow with the
// number of connections.
func TestSpliceCopyReusesPipes(t *testing.T) {
	const conns = 3 * maxIdlePipes
	before := openFDs(t)
	payload := bytes.Repeat([]byte("x"), 200<<10)
	for i := range conns {
		client, server, res := forwarded(t, -1)
		go func() { client.Write(payload); client.(*net.TCPConn).CloseWrite() }()
		got, err := io.ReadAll(server)
		if err != nil || len(got) != len(payload) {
			t.Fatalf("connection %d: server read %d bytes, %v; want %d", i, len(got), err, len(payload))
		}
		server.Close()
		io.ReadAll(client)
		client.Close()
		if r := <-res; r.Received != int64(len(payload)) {
			t.Fatalf("connection %d: Received = %d; want %d", i, r.Received, len(payload))
		}
	}
	// All four sockets of each connection are closed; the pool keeps at
	// most 2 descriptors per idle pipe (plus a few for the runtime).
	if got, limit := openFDs(t)-before, 2*maxIdlePipes+8; got > limit {
		t.Errorf("%d more descriptors after %d connections; want at most %d", got, conns, limit)
	}
	idlePipes.Lock()
	n := len(idlePipes.free)
	idlePipes.Unlock()
	if n == 0 || n > maxIdlePipes {
		t.Errorf("%d idle pipes; want 1..%d", n, maxIdlePipes)
	}
}

// TestSpliceCopyAllocs moves 32 MiB, hundreds of splice chunks, through
// a forwarded connection: the copy loop allocates nothing per chunk.
func TestSpliceCopyAllocs(t *testing.T) {
	client, server, res := forwarded(t, -1)
	defer func() { client.Close(); server.Close(); <-res }()
	buf, rbuf := make([]byte, 64<<10), make([]byte, 64<<10)
	move := func(n int) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for got := 0; got < n; {
				k, err := server.Read(rbuf)
				if err != nil {
					t.Errorf("server read after %d bytes: %v", got, err)
					return
				}
				got += k
			}
		}()
		for sent := 0; sent < n; sent += len(buf) {
			if _, err := client.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
		<-done
	}
	move(1 << 20) // both directions' loops are running
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	move(32 << 20)
	runtime.ReadMemStats(&after)
	// Three allocations per chunk before the loop kept its callbacks.
	if n := after.Mallocs - before.Mallocs; n > 20 {
		t.Errorf("%d allocations while moving 32 MiB; want at most 20 (none per chunk)", n)
	}
}
