package telemetry

import (
	"io"
	"strconv"
	"testing"
)

// BenchmarkRecordHTTP records requests whose label combinations are
// already cached: the per-request cost on the proxy's hot path.
func BenchmarkRecordHTTP(b *testing.B) {
	tel := New(NewMetrics(), nil)
	recs := make([]HTTPRecord, 16)
	for i := range recs {
		recs[i] = *testHTTPRecord()
		recs[i].Service.Host = "svc" + strconv.Itoa(i)
		tel.RecordHTTP(&recs[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tel.RecordHTTP(&recs[i&15])
			i++
		}
	})
}

// BenchmarkRecordHTTPSerial is BenchmarkRecordHTTP on one goroutine.
func BenchmarkRecordHTTPSerial(b *testing.B) {
	tel := New(NewMetrics(), nil)
	r := testHTTPRecord()
	tel.RecordHTTP(r)
	b.ReportAllocs()
	for b.Loop() {
		tel.RecordHTTP(r)
	}
}

// BenchmarkRecordHTTPWithLog adds the access-log enqueue; a discarding
// writer keeps the queue drained.
func BenchmarkRecordHTTPWithLog(b *testing.B) {
	log := NewAccessLog(io.Discard, 0, nil)
	defer log.Close()
	tel := New(NewMetrics(), log)
	r := testHTTPRecord()
	tel.RecordHTTP(r)
	b.ReportAllocs()
	for b.Loop() {
		tel.RecordHTTP(r)
	}
	b.ReportMetric(float64(log.Dropped()), "dropped")
}

// BenchmarkAccessLogEnqueue is the request-side cost of one log line.
func BenchmarkAccessLogEnqueue(b *testing.B) {
	log := NewAccessLog(io.Discard, 0, nil)
	defer log.Close()
	r := testHTTPRecord()
	b.ReportAllocs()
	for b.Loop() {
		log.enqueueHTTP(r)
	}
}

// BenchmarkAccessLogEncode is the writer-side cost of one line.
func BenchmarkAccessLogEncode(b *testing.B) {
	r := testHTTPRecord()
	e := logEntry{LogFields: r.LogFields, code: 200, received: 321, sent: 4567, duration: r.Duration,
		method: r.Method, path: r.Path, protocol: r.HTTPProtocol, details: r.ResponseCodeDetails,
		userAgent: r.UserAgent, requestID: r.RequestID, authority: r.Authority}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEntry(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkTCPConnection is one connection's open, byte report and close.
func BenchmarkTCPConnection(b *testing.B) {
	tel := New(NewMetrics(), nil)
	l := testLabels()
	r := TCPRecord{Labels: l, SentBytes: 1000, ReceivedBytes: 100}
	b.ReportAllocs()
	for b.Loop() {
		var c TCPConn
		tel.RecordTCPOpen(&c, &l)
		tel.RecordTCPBytes(&c, 500, 50)
		tel.RecordTCPClose(&c, &r)
	}
}

func BenchmarkResponseFlagsString(b *testing.B) {
	for _, f := range []ResponseFlags{0, UpstreamConnectionFailure, UpstreamConnectionFailure | UpstreamRetryLimitExceeded} {
		b.Run(f.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = f.String()
			}
		})
	}
}
