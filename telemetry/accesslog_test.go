package telemetry

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testHTTPRecord() *HTTPRecord {
	return &HTTPRecord{
		Labels: testLabels(),
		LogFields: LogFields{
			Start:                   time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600)),
			UpstreamHost:            "10.0.0.7:9080",
			UpstreamCluster:         "outbound|9080||reviews.default.svc.cluster.local",
			UpstreamLocalAddress:    "10.0.0.5:40000",
			DownstreamLocalAddress:  "10.96.0.9:9080",
			DownstreamRemoteAddress: "10.0.0.5:51234",
			RouteName:               "default",
		},
		ResponseCode: 200, Duration: 12*time.Millisecond + 700*time.Microsecond,
		RequestBytes: 321, ResponseBytes: 4567, UpstreamServiceTime: 11 * time.Millisecond,
		Method: "GET", Path: "/reviews/0", HTTPProtocol: "HTTP/1.1", ResponseCodeDetails: "via_upstream",
		UserAgent: "curl/8.0", RequestID: "c0ffee", Authority: "reviews:9080",
	}
}

// istioFields are the keys of Istio's default JSON access-log format.
var istioFields = []string{"authority", "bytes_received", "bytes_sent", "connection_termination_details",
	"downstream_local_address", "downstream_remote_address", "duration", "method", "path", "protocol",
	"request_id", "requested_server_name", "response_code", "response_code_details", "response_flags",
	"route_name", "start_time", "upstream_cluster", "upstream_host", "upstream_local_address",
	"upstream_service_time", "upstream_transport_failure_reason", "user_agent", "x_forwarded_for"}

// lines parses each line of out as a JSON object.
func lines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got = append(got, m)
	}
	return got
}

func TestAccessLogHTTPLine(t *testing.T) {
	var buf syncBuffer
	log := NewAccessLog(&buf, 0, nil)
	New(NewMetrics(), log).RecordHTTP(testHTTPRecord())
	if err := log.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := lines(t, buf.String())
	if len(got) != 1 {
		t.Fatalf("got %d lines; want 1", len(got))
	}
	m := got[0]
	if len(m) != len(istioFields) {
		t.Errorf("got %d fields; want %d", len(m), len(istioFields))
	}
	for _, k := range istioFields {
		if _, ok := m[k]; !ok {
			t.Errorf("field %s missing", k)
		}
	}
	want := map[string]any{
		"start_time": "2024-05-06T06:08:09.123Z", "method": "GET", "path": "/reviews/0", "protocol": "HTTP/1.1",
		"response_code": 200.0, "response_flags": "-", "response_code_details": "via_upstream",
		"connection_termination_details": nil, "upstream_transport_failure_reason": nil,
		"bytes_received": 321.0, "bytes_sent": 4567.0, "duration": 12.0, "upstream_service_time": "11",
		"x_forwarded_for": nil, "user_agent": "curl/8.0", "request_id": "c0ffee", "authority": "reviews:9080",
		"upstream_host": "10.0.0.7:9080", "upstream_cluster": "outbound|9080||reviews.default.svc.cluster.local",
		"upstream_local_address": "10.0.0.5:40000", "downstream_local_address": "10.96.0.9:9080",
		"downstream_remote_address": "10.0.0.5:51234", "requested_server_name": nil, "route_name": "default",
	}
	for k, w := range want {
		if m[k] != w {
			t.Errorf("%s = %#v; want %#v", k, m[k], w)
		}
	}
}

func TestAccessLogTCPLine(t *testing.T) {
	var buf syncBuffer
	log := NewAccessLog(&buf, 0, nil)
	tel := New(NewMetrics(), log)
	var c TCPConn
	l := testLabels()
	tel.RecordTCPOpen(&c, &l)
	tel.RecordTCPClose(&c, &TCPRecord{Labels: l, Flags: UpstreamConnectionFailure | UpstreamRetryLimitExceeded,
		LogFields: LogFields{UpstreamCluster: "outbound|3306||db", UpstreamTransportFailureReason: "connection refused"},
		SentBytes: 0, ReceivedBytes: 12, Duration: 2 * time.Second})
	log.Close()
	m := lines(t, buf.String())[0]
	want := map[string]any{"method": nil, "path": nil, "protocol": nil, "response_code": 0.0,
		"response_flags": "UF,URX", "bytes_received": 12.0, "bytes_sent": 0.0, "duration": 2000.0,
		"upstream_service_time": nil, "start_time": nil, "upstream_cluster": "outbound|3306||db",
		"upstream_transport_failure_reason": "connection refused"}
	for k, w := range want {
		if m[k] != w {
			t.Errorf("%s = %#v; want %#v", k, m[k], w)
		}
	}
}

func TestAccessLogEscaping(t *testing.T) {
	hostile := []string{
		`a"b\c`,
		"line\nbreak\r\ttab\x00nul\x1funit\x7fdel",
		"bad utf8 \xff\xfe end",
		"truncated \xe2\x82",
		"sep \u2028 \u2029 ok",
		"日本語 ✓",
		`</script><script>alert(1)</script>`,
	}
	for _, s := range hostile {
		var buf syncBuffer
		log := NewAccessLog(&buf, 0, nil)
		r := testHTTPRecord()
		r.Path, r.UserAgent = s, s
		New(NewMetrics(), log).RecordHTTP(r)
		log.Close()
		out := buf.String()
		if strings.Count(out, "\n") != 1 {
			t.Errorf("%q: output has %d newlines; want 1", s, strings.Count(out, "\n"))
		}
		if strings.ContainsAny(out, "\u2028\u2029\x00\t") {
			t.Errorf("%q: raw U+2028, U+2029 or control character in %q", s, out)
		}
		m := lines(t, out)[0]
		want := string([]rune(s)) // each invalid byte becomes U+FFFD, as encoding/json does
		if m["path"] != want || m["user_agent"] != want {
			t.Errorf("%q: path = %q; want %q", s, m["path"], want)
		}
	}
}

func TestAccessLogFileWithinASecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		log, err := OpenAccessLog(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		start := time.Now()
		New(NewMetrics(), log).RecordHTTP(testHTTPRecord())
		time.Sleep(FlushInterval)
		synctest.Wait() // the writer is idle again: the line has been written
		if waited := time.Since(start); waited > time.Second {
			t.Errorf("line written after %v; want within 1s", waited)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(got) != 2 || got[0] != "earlier" || !strings.Contains(got[1], `"path":"/reviews/0"`) {
			t.Errorf("file = %q; want the earlier line, then the request", data)
		}
	})
}

func TestOpenAccessLogOff(t *testing.T) {
	for _, dest := range []string{"", "off"} {
		log, err := OpenAccessLog(dest, nil)
		if log != nil || err != nil {
			t.Errorf("OpenAccessLog(%q) = %v, %v; want nil, nil", dest, log, err)
		}
		New(NewMetrics(), log).RecordHTTP(testHTTPRecord()) // a nil log logs nothing
		if err := log.Close(); err != nil {
			t.Errorf("nil Close: %v", err)
		}
	}
	if _, err := OpenAccessLog(filepath.Join(t.TempDir(), "no", "such", "dir"), nil); err == nil {
		t.Error("OpenAccessLog in a missing directory succeeded")
	}
}

// gateWriter blocks every Write until release is closed.
type gateWriter struct {
	release chan struct{}
	buf     syncBuffer
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.release
	return g.buf.Write(p)
}

func TestAccessLogDropsWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queue = 16
		w := &gateWriter{release: make(chan struct{})}
		m := NewMetrics()
		log := NewAccessLog(w, queue, m)
		tel := New(m, log)
		r := testHTTPRecord()
		tel.RecordHTTP(r)
		time.Sleep(FlushInterval)
		synctest.Wait() // the writer holds the first line, blocked in Write
		for range queue + 10 {
			tel.RecordHTTP(r) // must not block although nothing drains
		}
		if got := log.Dropped(); got != 10 {
			t.Errorf("Dropped = %d; want 10", got)
		}
		if got := find(t, family(t, m, "remora_access_log_dropped_total"), nil).GetCounter().GetValue(); got != 10 {
			t.Errorf("remora_access_log_dropped_total = %v; want 10", got)
		}
		close(w.release)
		log.Close()
		if got := strings.Count(w.buf.String(), "\n"); got != queue+1 {
			t.Errorf("wrote %d lines; want %d", got, queue+1)
		}
		tel.RecordHTTP(r) // after Close: dropped, no panic
		if got := log.Dropped(); got != 11 {
			t.Errorf("Dropped after Close = %d; want 11", got)
		}
	})
}

func TestAccessLogCloseFlushesEverything(t *testing.T) {
	var buf syncBuffer
	log := NewAccessLog(&buf, 0, nil)
	tel := New(NewMetrics(), log)
	const n = 2000 // about 1.5 MB: many flushSize batches
	for range n {
		tel.RecordHTTP(testHTTPRecord())
	}
	log.Close()
	if got := len(lines(t, buf.String())); got != n {
		t.Errorf("wrote %d lines; want %d", got, n)
	}
}
