package upstream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
)

// cannedHead is a typical small upstream answer head (Envoy-fronted app).
const cannedHead = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Date: Wed, 02 Dec 2026 03:06:03 GMT\r\nX-Envoy-Upstream-Service-Time: 1\r\nContent-Length: 2\r\n\r\n"

// rawServer answers every request head (and bodyLen body bytes) with
// cannedHead+"ok", allocating nothing per request, so that a benchmark's
// allocations and time are the client's.
func rawServer(b *testing.B, bodyLen int) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	answer := []byte(cannedHead + "ok")
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCanned(conn, answer, bodyLen)
		}
	}()
	return ln.Addr().String()
}

func serveCanned(conn net.Conn, answer []byte, bodyLen int) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
		}
		if _, err := br.Discard(bodyLen); err != nil {
			return
		}
		if _, err := conn.Write(answer); err != nil {
			return
		}
	}
}

// proxyHeader is what the proxy forwards for a typical request.
func proxyHeader() http.Header {
	return http.Header{
		"Accept":                 {"*/*"},
		"User-Agent":             {"fortio.org/fortio-1.66.5"},
		"X-Forwarded-Proto":      {"http"},
		"X-Request-Id":           {"3f0c1f8e-9a51-4f4e-8d0a-6b1f2b7c9d11"},
		"X-Envoy-Attempt-Count":  {"1"},
		"X-B3-Traceid":           {"80f198ee56343ba864fe8b2a57d3eff7"},
		"X-B3-Spanid":            {"e457b5a2e4d86bd1"},
		"X-Envoy-Decorator-Oper": {"reviews.default.svc.cluster.local:9080/*"},
	}
}

// benchCluster is a cluster over a rawServer.
func benchCluster(b *testing.B, bodyLen int) *Cluster {
	m := NewManager(Options{})
	b.Cleanup(m.Close)
	m.Update(snap(b, config.HTTP, snapshot.Policy{}, rawServer(b, bodyLen)))
	return m.Cluster(clusterName(""))
}

// BenchmarkRoundTripRaw is a pooled GET with the proxy's usual headers to
// a server that allocates nothing: the client's cost alone.
func BenchmarkRoundTripRaw(b *testing.B) {
	c := benchCluster(b, 0)
	req, _ := http.NewRequest("GET", "http://"+testHost+"/productpage?u=1", nil)
	req.Header = proxyHeader()
	benchGets(b, c, req)
}

// BenchmarkRoundTripPost is the same with a 512-byte buffered body, as
// the proxy sends one.
func BenchmarkRoundTripPost(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 512)
	c := benchCluster(b, len(payload))
	req, _ := http.NewRequest("POST", "http://"+testHost+"/api", nil)
	req.Header = proxyHeader()
	req.ContentLength = int64(len(payload))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		req.Body = io.NopCloser(bytes.NewReader(payload))
		resp, _, err := c.RoundTrip(ctx, req, AttemptOptions{})
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkReadResponse parses a response head and reads its body from
// memory, without a network.
func BenchmarkReadResponse(b *testing.B) {
	const n = 64
	raw := strings.Repeat(cannedHead+"ok", n)
	src := strings.NewReader(raw)
	pc := &pconn{br: bufio.NewReader(src)}
	req, _ := http.NewRequest("GET", "http://"+testHost+"/", nil)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%n == 0 {
			src.Reset(raw)
			pc.br.Reset(src)
		}
		i++
		resp, err := pc.readResponse(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteRequest writes a typical proxied request head to memory.
func BenchmarkWriteRequest(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://"+testHost+"/productpage?u=1", nil)
	req.Header = proxyHeader()
	pc := &pconn{}
	pc.bw = bufio.NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pc.send(req); err != nil {
			b.Fatal(err)
		}
	}
}
