package telemetry_test

import (
	"os"
	"time"

	"github.com/remora-mesh/remora/telemetry"
)

// The proxy builds Labels once per listener or route, then fills one record
// per request and per TCP connection.
func Example() {
	m := telemetry.NewMetrics()
	log := telemetry.NewAccessLog(os.Stdout, 0, m)
	tel := telemetry.New(m, log)

	labels := telemetry.Labels{
		Reporter: telemetry.ReporterSource,
		Source:   telemetry.Peer{Workload: "productpage-v1", Namespace: "default", App: "productpage", Version: "v1"},
		Service:  telemetry.Service{Host: "reviews.default.svc.cluster.local", Name: "reviews", Namespace: "default"},
	}

	// One HTTP request, at stream completion.
	tel.RecordHTTP(&telemetry.HTTPRecord{
		Labels:       labels,
		LogFields:    telemetry.LogFields{UpstreamCluster: "outbound|9080||reviews.default.svc.cluster.local"},
		ResponseCode: 503,
		Flags:        telemetry.UpstreamOverflow,
		Duration:     3 * time.Millisecond,
		Method:       "GET",
		Path:         "/reviews/1",
	})

	// One TCP connection: open, running byte totals, close.
	var c telemetry.TCPConn
	tel.RecordTCPOpen(&c, &labels)
	tel.RecordTCPBytes(&c, 1024, 64)
	tel.RecordTCPClose(&c, &telemetry.TCPRecord{Labels: labels, SentBytes: 2048, ReceivedBytes: 64})

	log.Close()
	// Output:
	// {"authority":null,"bytes_received":0,"bytes_sent":0,"connection_termination_details":null,"downstream_local_address":null,"downstream_remote_address":null,"duration":3,"method":"GET","path":"/reviews/1","protocol":null,"request_id":null,"requested_server_name":null,"response_code":503,"response_code_details":null,"response_flags":"UO","route_name":null,"start_time":null,"upstream_cluster":"outbound|9080||reviews.default.svc.cluster.local","upstream_host":null,"upstream_local_address":null,"upstream_service_time":null,"upstream_transport_failure_reason":null,"user_agent":null,"x_forwarded_for":null}
	// {"authority":null,"bytes_received":64,"bytes_sent":2048,"connection_termination_details":null,"downstream_local_address":null,"downstream_remote_address":null,"duration":0,"method":null,"path":null,"protocol":null,"request_id":null,"requested_server_name":null,"response_code":0,"response_code_details":null,"response_flags":"-","route_name":null,"start_time":null,"upstream_cluster":null,"upstream_host":null,"upstream_local_address":null,"upstream_service_time":null,"upstream_transport_failure_reason":null,"user_agent":null,"x_forwarded_for":null}
}
