package proxy

import (
	"time"

	"github.com/remora-mesh/remora/telemetry"
)

func (l *Listener) recordOpen(rec *TCPRecord) { recordTCPOpen(l.Telemetry, &l.Local, rec) }

func (l *Listener) recordClose(rec *TCPRecord) { recordTCPClose(l.Telemetry, &l.Local, rec, l.idle()) }

// recordTCPOpen counts a TCP connection as opened once its upstream is
// chosen, with the labels of its destination service.
func recordTCPOpen(tel *telemetry.Telemetry, local *telemetry.Labels, rec *TCPRecord) {
	if tel == nil || rec.opened {
		return
	}
	rec.labels = *local
	rec.labels.Protocol = telemetry.ProtocolTCP
	if rec.Info.Inbound {
		rec.labels.Reporter, rec.labels.Destination, rec.labels.Source = telemetry.ReporterDestination, local.Source, telemetry.Peer{}
		rec.labels.SecurityPolicy = telemetry.SecurityNone
	}
	if s := rec.Info.Service; s != nil {
		rec.labels.Service = telemetry.Service{Host: s.Host, Name: s.Host, Namespace: s.Namespace}
	}
	rec.opened = true
	tel.RecordTCPOpen(&rec.tel, &rec.labels)
}

// recordTCPClose counts the connection as closed with its byte totals and
// writes its access-log line; a connection refused before any upstream
// was chosen is opened and closed here.
func recordTCPClose(tel *telemetry.Telemetry, local *telemetry.Labels, rec *TCPRecord, idle time.Duration) {
	if tel == nil {
		return
	}
	recordTCPOpen(tel, local, rec)
	r := telemetry.TCPRecord{Labels: rec.labels, Flags: rec.Flags, SentBytes: rec.Result.Sent,
		ReceivedBytes: rec.Result.Received, Duration: rec.Duration}
	r.Start, r.UpstreamHost, r.UpstreamCluster, r.RequestedServerName = rec.Start, rec.UpstreamHost, rec.Cluster, rec.SNI
	if rec.UpstreamLocal.IsValid() {
		r.UpstreamLocalAddress = rec.UpstreamLocal.String()
	}
	if rec.Info.Remote.IsValid() {
		r.DownstreamRemoteAddress = rec.Info.Remote.String()
	}
	if rec.Info.Original.IsValid() {
		r.DownstreamLocalAddress = rec.Info.Original.String()
	}
	if rec.Result.IdleTimeout {
		r.ConnectionTerminationDetails = "idle timeout " + idle.String()
	}
	tel.RecordTCPClose(&rec.tel, &r)
}

func (l *Listener) idle() time.Duration {
	if l.IdleTimeout > 0 {
		return l.IdleTimeout
	}
	return DefaultIdleTimeout
}
