package main

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/remora-mesh/remora/upstream"
)

// testDNS is a minimal UDP DNS server on loopback for tests: A and AAAA
// answers for the names it was given, with a TTL; NODATA for a known
// name without a record of the asked type; NXDOMAIN otherwise. It never
// forwards a query anywhere.
type testDNS struct {
	conn *net.UDPConn
	ttl  uint32
	mu   sync.Mutex
	recs map[string][]netip.Addr // lower-case FQDN with the trailing dot
	// queries counts the questions answered, by name.
	queries map[string]int
}

// startTestDNS serves names (host → addresses) on 127.0.0.1 until the
// test ends.
func startTestDNS(t *testing.T, names map[string][]string) *testDNS {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d := &testDNS{conn: c, ttl: 30, recs: map[string][]netip.Addr{}, queries: map[string]int{}}
	for n, addrs := range names {
		key := strings.ToLower(strings.TrimSuffix(n, ".")) + "."
		for _, a := range addrs {
			d.recs[key] = append(d.recs[key], netip.MustParseAddr(a))
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); d.serve() }()
	t.Cleanup(func() { c.Close(); <-done })
	return d
}

// Addr is the server's HOST:PORT, for --dns-server.
func (d *testDNS) Addr() string { return d.conn.LocalAddr().String() }

func (d *testDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if resp, err := d.answer(buf[:n]); err == nil {
			_, _ = d.conn.WriteToUDPAddrPort(resp, from)
		}
	}
}

var errBadQuery = errors.New("malformed DNS query")

// answer builds the response to one query message.
func (d *testDNS) answer(q []byte) ([]byte, error) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil, errBadQuery
	}
	var name strings.Builder
	i := 12
	for {
		if i >= len(q) {
			return nil, errBadQuery
		}
		l := int(q[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(q) {
			return nil, errBadQuery
		}
		name.Write(q[i : i+l])
		name.WriteByte('.')
		i += l
	}
	if i+4 > len(q) {
		return nil, errBadQuery
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	question := q[12 : i+4]
	host := strings.ToLower(name.String())
	d.mu.Lock()
	addrs, known := d.recs[host]
	d.queries[host]++
	d.mu.Unlock()
	var answers []netip.Addr
	for _, a := range addrs {
		if qtype == 1 && a.Is4() || qtype == 28 && a.Is6() {
			answers = append(answers, a)
		}
	}
	resp := make([]byte, 12, 512)
	copy(resp, q[:2])                                                        // ID
	flags := uint16(0x8000) | binary.BigEndian.Uint16(q[2:])&0x0100 | 0x0080 // QR, RD copied, RA
	if !known {
		flags |= 3 // NXDOMAIN
	}
	binary.BigEndian.PutUint16(resp[2:], flags)
	binary.BigEndian.PutUint16(resp[4:], 1)
	binary.BigEndian.PutUint16(resp[6:], uint16(len(answers)))
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, 0xc0, 12) // pointer to the question name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, d.ttl)
		ip := a.AsSlice()
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(ip)))
		resp = append(resp, ip...)
	}
	return resp, nil
}

// Queries reports how many questions for host were answered.
func (d *testDNS) Queries(host string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[strings.ToLower(strings.TrimSuffix(host, "."))+"."]
}

// TestTestDNS checks the test resolver through the resolver remora
// uses for --dns-server.
func TestTestDNS(t *testing.T) {
	d := startTestDNS(t, map[string][]string{"svc.external.test": {"127.0.0.1", "::1"}})
	r := upstream.NewResolver(d.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := r.LookupNetIP(ctx, "ip", "svc.external.test")
	if err != nil {
		t.Fatalf("LookupNetIP: %v", err)
	}
	slices.SortFunc(got, func(a, b netip.Addr) int { return a.Compare(b) })
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}; !slices.Equal(got, want) {
		t.Errorf("LookupNetIP = %v; want %v", got, want)
	}
	_, err = r.LookupNetIP(ctx, "ip4", "missing.external.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("LookupNetIP(missing) = %v; want not found", err)
	}
}
