package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestGRPCThroughProxy runs a real grpc-go health server behind a GRPC
// port: unary calls and a server stream pass, with trailers (grpc-status).
func TestGRPCThroughProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("reviews", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	be := &backend{name: "v1", srv: &httptest.Server{Listener: ln}}
	p := startProxy(t, 9090, serviceEntry("grpc-svc", 9090, "GRPC", be))
	conn, err := grpc.NewClient("passthrough:///grpc-svc:9090", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", p.addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := healthpb.NewHealthClient(conn)
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "reviews"})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check = %v, %v; want SERVING", resp, err)
	}
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("Check(unknown) error = %v; want the server's NotFound status (trailers passed through)", err)
	}
	stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "reviews"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first = %v, %v", first, err)
	}
	hs.SetServingStatus("reviews", healthpb.HealthCheckResponse_NOT_SERVING)
	second, err := stream.Recv()
	if err != nil || second.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch second = %v, %v; want NOT_SERVING streamed without buffering", second, err)
	}
}

func TestWebSocketEcho(t *testing.T) {
	echo := websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) })
	b := newBackend(t, "v1", echo.ServeHTTP)
	p := startProxy(t, 8000, serviceEntry("ws", 8000, "HTTP", b))
	cfg, _ := websocket.NewConfig("ws://ws:8000/echo", "http://ws:8000/")
	raw, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := websocket.NewClient(cfg, raw)
	if err != nil {
		t.Fatalf("websocket handshake through the proxy: %v", err)
	}
	defer ws.Close()
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		ws.SetReadDeadline(time.Now().Add(2 * time.Second))
		if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
}

func TestHTTP2PriorKnowledgeCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed: apt-get install curl")
	}
	b := newBackend(t, "v1", nil)
	p := startProxy(t, 8000, serviceEntry("h2", 8000, "HTTP", b))
	out, err := exec.Command("curl", "-sS", "--http2-prior-knowledge", "-o", "-", "-w", " %{http_version} %{http_code}",
		"--connect-to", "h2:8000:"+p.addr, "http://h2:8000/x").CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	if got := string(out); got != "v1 2 200" {
		t.Errorf("curl --http2-prior-knowledge = %q; want \"v1 2 200\"", got)
	}
}

func TestHTTP10Rejected(t *testing.T) {
	b := newBackend(t, "v1", nil)
	p := startProxy(t, 8000, serviceEntry("old", 8000, "HTTP", b))
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: old:8000\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); !strings.HasPrefix(got, "HTTP/1.0 426") && !strings.HasPrefix(got, "HTTP/1.1 426") {
		t.Errorf("HTTP/1.0 answered %q; want 426", got)
	}
	_ = http.StatusUpgradeRequired
}
