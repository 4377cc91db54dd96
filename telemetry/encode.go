package telemetry

import (
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// appendEntry appends e as one JSON object and a newline. Field names are
// Istio's default JSON access-log format (EnvoyJSONLogFormatIstio), in the
// sorted order Envoy prints them. As with Envoy's JSON formatter,
// response_code, bytes_received, bytes_sent and duration are numbers,
// everything else is a string, and a missing value is null; response_flags
// is "-" when empty. Times are UTC with milliseconds, durations whole ms.
func appendEntry(b []byte, e *logEntry) []byte {
	b = appendStr(b, `{"authority":`, e.authority)
	b = append(b, `,"bytes_received":`...)
	b = strconv.AppendInt(b, e.received, 10)
	b = append(b, `,"bytes_sent":`...)
	b = strconv.AppendInt(b, e.sent, 10)
	b = appendStr(b, `,"connection_termination_details":`, e.ConnectionTerminationDetails)
	b = appendStr(b, `,"downstream_local_address":`, e.DownstreamLocalAddress)
	b = appendStr(b, `,"downstream_remote_address":`, e.DownstreamRemoteAddress)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(e.duration/time.Millisecond), 10)
	b = appendStr(b, `,"method":`, e.method)
	b = appendStr(b, `,"path":`, e.path)
	b = appendStr(b, `,"protocol":`, e.protocol)
	b = appendStr(b, `,"request_id":`, e.requestID)
	b = appendStr(b, `,"requested_server_name":`, e.RequestedServerName)
	b = append(b, `,"response_code":`...)
	b = strconv.AppendInt(b, int64(e.code), 10)
	b = appendStr(b, `,"response_code_details":`, e.details)
	b = append(b, `,"response_flags":"`...)
	b = e.flags.AppendTo(b)
	b = append(b, '"')
	b = appendStr(b, `,"route_name":`, e.RouteName)
	b = append(b, `,"start_time":`...)
	if e.Start.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = appendTime(b, e.Start)
		b = append(b, '"')
	}
	b = appendStr(b, `,"upstream_cluster":`, e.UpstreamCluster)
	b = appendStr(b, `,"upstream_host":`, e.UpstreamHost)
	b = appendStr(b, `,"upstream_local_address":`, e.UpstreamLocalAddress)
	b = append(b, `,"upstream_service_time":`...)
	if e.upstreamTime == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(e.upstreamTime/time.Millisecond), 10)
		b = append(b, '"')
	}
	b = appendStr(b, `,"upstream_transport_failure_reason":`, e.UpstreamTransportFailureReason)
	b = appendStr(b, `,"user_agent":`, e.userAgent)
	b = appendStr(b, `,"x_forwarded_for":`, e.xff)
	return append(b, "}\n"...)
}

// appendStr appends key (already JSON, with its colon) and s as a JSON
// string, or null when s is empty.
func appendStr(b []byte, key, s string) []byte {
	b = append(b, key...)
	if s == "" {
		return append(b, "null"...)
	}
	return appendQuoted(b, s)
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. Control characters, quotes and
// backslashes are escaped, invalid UTF-8 becomes U+FFFD, and U+2028 and
// U+2029 are escaped so the line is safe to embed in JavaScript, as
// encoding/json does.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// secondPrefix is a start time formatted up to its second.
type secondPrefix struct {
	sec int64
	s   []byte
}

var timePrefix atomic.Pointer[secondPrefix]

// appendTime appends t as the log's start_time (UTC, milliseconds,
// "2006-01-02T15:04:05.000Z"); the part up to the second is formatted
// once a second.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	p := timePrefix.Load()
	if p == nil || p.sec != t.Unix() {
		p = &secondPrefix{sec: t.Unix(), s: t.AppendFormat(nil, "2006-01-02T15:04:05.")}
		timePrefix.Store(p)
	}
	ms := t.Nanosecond() / int(time.Millisecond)
	b = append(b, p.s...)
	return append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}
