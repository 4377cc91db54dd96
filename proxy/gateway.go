package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// DefaultHandshakeTimeout bounds reading a gateway connection's
// ClientHello and completing its TLS handshake (Istio's
// transport_socket_connect_timeout on gateways).
const DefaultHandshakeTimeout = 15 * time.Second

// DefaultGatewayDrain is how long a listener a reload removed lets its
// connections finish.
const DefaultGatewayDrain = 5 * time.Second

// Gateway serves the listeners of a gateway proxy (--role gateway): one
// per Gateway server port (servers[].bind, else BindAddress, else every
// address), with the port's servers as filter chains. HTTP, HTTP2 and
// GRPC servers serve HTTP/1.1 and h2c; HTTPS servers terminate TLS (SIMPLE,
// MUTUAL, OPTIONAL_MUTUAL, certificate chosen by SNI, ALPN h2) and serve
// HTTP; TLS servers terminate and forward by tcp rules, or with
// PASSTHROUGH forward by SNI through tls rules without terminating; TCP
// servers forward by tcp rules. Set the fields, then call Update with
// each snapshot; the fields must not change afterwards. Update and
// Shutdown are safe for concurrent use.
type Gateway struct {
	// Store supplies the snapshot each connection and request is served
	// with.
	Store *snapshot.Store
	// Upstream dials the tcp/tls rules' clusters; it must not be nil.
	Upstream *upstream.Manager
	// HTTP is the HTTP chain requests are handed to; it must not be nil.
	HTTP *HTTPServer
	// Log gets listener events and per-connection debug logs; nil is
	// silent.
	Log *zap.Logger
	// BindAddress restricts listeners without servers[].bind to one
	// address (--bind-address); empty means every address.
	BindAddress string
	// OnListen, if set, learns each listener's bound address.
	OnListen func(name string, addr net.Addr)
	// OnTCP, if set, is called once for each forwarded (or refused) TCP
	// or TLS connection when it ends.
	OnTCP func(*TCPRecord)
	// Telemetry records each TCP connection (istio_tcp_* metrics, access
	// log); nil means none. Local are this gateway's own Istio labels.
	Telemetry *telemetry.Telemetry
	Local     telemetry.Labels
	// HandshakeTimeout bounds the ClientHello and TLS handshake; zero
	// means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes quiet forwarded connections; zero means
	// DefaultIdleTimeout, negative never.
	IdleTimeout time.Duration
	// Drain bounds how long a listener removed by a reload lets its
	// connections finish; zero means DefaultGatewayDrain.
	Drain time.Duration

	mu        sync.Mutex
	listeners map[string]*gwListener // by bind address
	closed    bool
	wg        sync.WaitGroup // removed listeners draining
}

// gwServer is one Gateway server as a listener serves it.
type gwServer struct {
	gateway string // namespace/name
	name    string
	proto   config.Protocol
	// hosts are the dnsName parts of servers[].hosts, lower-case; hostNS
	// their namespace parts ("*" for any, "." already resolved to the
	// Gateway's own).
	hosts       []string
	hostNS      []string
	tls         *serverTLS // terminating servers only
	passthrough bool
	redirect    bool
}

// gwKind is what a listener speaks on the wire.
type gwKind int

const (
	kindHTTP gwKind = iota // plain HTTP/1.1 and h2c
	kindTLS                // TLS: terminated or passed through, by SNI
	kindTCP                // opaque TCP
)

// gwPortSet is the servers of one listener from one snapshot. It is
// immutable.
type gwPortSet struct {
	port    uint32
	kind    gwKind
	servers []*gwServer
}

func (g *Gateway) log() *zap.Logger {
	if g.Log == nil {
		return zap.NewNop()
	}
	return g.Log
}

func kindOf(p config.Protocol) gwKind {
	switch {
	case p.IsHTTP():
		return kindHTTP
	case p.IsTLS():
		return kindTLS
	}
	return kindTCP
}

// Update reconciles the listeners with snap's Gateways: it binds the new
// ports, gives the existing ones the new servers (and freshly loaded
// certificates) for their next connections, and drains the ones snap no
// longer has. It returns once every listener is bound; the error joins
// the ports that could not be bound, which are retried on the next
// Update.
func (g *Gateway) Update(snap *snapshot.Snapshot) error {
	want := g.compile(snap)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrListenerClosed
	}
	if g.listeners == nil {
		g.listeners = map[string]*gwListener{}
	}
	var errs []error
	for addr, set := range want {
		if l := g.listeners[addr]; l != nil {
			l.set.Store(set)
			continue
		}
		l, err := g.listen(addr, set)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.listeners[addr] = l
	}
	for addr, l := range g.listeners {
		if want[addr] == nil {
			delete(g.listeners, addr)
			g.wg.Add(1)
			go g.drain(l)
		}
	}
	return errors.Join(errs...)
}

// drain stops a removed listener, letting its connections finish for
// g.Drain.
func (g *Gateway) drain(l *gwListener) {
	defer g.wg.Done()
	d := g.Drain
	if d <= 0 {
		d = DefaultGatewayDrain
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	l.shutdown(ctx)
	g.log().Info("gateway listener removed", zap.String("listener", l.name))
}

// Shutdown closes every listener, lets HTTP requests and forwarded
// connections in flight finish until ctx ends, then closes what is left.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	ls := g.listeners
	g.listeners = nil
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() { defer wg.Done(); l.shutdown(ctx) }()
	}
	wg.Wait()
	g.wg.Wait()
	return ctx.Err()
}

// Addrs returns the bound address of each listener, by listener name
// ("gateway:PORT" or "gateway:BIND:PORT").
func (g *Gateway) Addrs() map[string]net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]net.Addr, len(g.listeners))
	for _, l := range g.listeners {
		out[l.name] = l.ln.Addr()
	}
	return out
}

// compile groups snap's Gateway servers by listen address. Servers that
// cannot be served (unsupported bind or TLS settings, a protocol that
// conflicts with the port's first server) are skipped with an error log.
func (g *Gateway) compile(snap *snapshot.Snapshot) map[string]*gwPortSet {
	out := map[string]*gwPortSet{}
	if snap == nil {
		return out
	}
	for _, gw := range snap.Gateways {
		key := gw.Meta.Namespace + "/" + gw.Meta.Name
		for i := range gw.Spec.Servers {
			srv := &gw.Spec.Servers[i]
			if srv.Port == nil {
				continue
			}
			log := g.log().With(zap.String("gateway", key), zap.Uint32("port", srv.Port.Number), zap.String("server", srv.Name))
			addr, err := g.bindFor(srv)
			if err != nil {
				log.Error("gateway server skipped", zap.Error(err))
				continue
			}
			s, err := g.server(key, srv, log)
			if err != nil {
				log.Error("gateway server skipped", zap.Error(err))
				continue
			}
			set := out[addr]
			if set == nil {
				set = &gwPortSet{port: srv.Port.Number, kind: kindOf(s.proto)}
				out[addr] = set
			}
			if kindOf(s.proto) != set.kind {
				log.Error("gateway server skipped: its protocol conflicts with another server on the port", zap.String("protocol", string(s.proto)))
				continue
			}
			set.servers = append(set.servers, s)
		}
	}
	return out
}

// bindFor is the listen address of srv: servers[].bind, else
// BindAddress, else every address; the port is port.number exactly.
func (g *Gateway) bindFor(srv *config.Server) (string, error) {
	host := g.BindAddress
	if srv.Bind != "" {
		if strings.HasPrefix(srv.Bind, "unix://") {
			return "", fmt.Errorf("bind %s: unix sockets are not supported", srv.Bind)
		}
		host = srv.Bind
	}
	return net.JoinHostPort(host, strconv.FormatUint(uint64(srv.Port.Number), 10)), nil
}

// server compiles one Gateway server.
func (g *Gateway) server(gateway string, srv *config.Server, log *zap.Logger) (*gwServer, error) {
	s := &gwServer{gateway: gateway, name: srv.Name, proto: config.ParseProtocol(srv.Port.Protocol)}
	if s.proto == config.Unknown {
		return nil, fmt.Errorf("port protocol %q is not supported", srv.Port.Protocol)
	}
	for _, h := range srv.Hosts {
		ns, name := config.SplitGatewayHost(h)
		if ns == "." {
			ns, _, _ = strings.Cut(gateway, "/")
		}
		s.hosts = append(s.hosts, strings.ToLower(name))
		s.hostNS = append(s.hostNS, ns)
	}
	ts := srv.TLS
	switch {
	case s.proto.IsHTTP():
		s.redirect = ts != nil && ts.HTTPSRedirect
	case s.proto.IsTLS():
		if ts == nil {
			return nil, fmt.Errorf("protocol %s needs a tls block", s.proto)
		}
		if ts.Mode == "PASSTHROUGH" || ts.Mode == "AUTO_PASSTHROUGH" {
			s.passthrough = true
			break
		}
		var alpn []string
		if s.proto == config.HTTPS {
			alpn = []string{"h2", "http/1.1"}
		}
		warn := func(msg string) { log.Warn(msg) }
		var err error
		if s.tls, err = newServerTLS(ts, alpn, warn); err != nil {
			return nil, err
		}
		s.tls.certs.OnError = func(err error) {
			log.Error("tls certificate reload failed; serving the last good certificate", zap.Error(err))
		}
	}
	return s, nil
}

// listen binds addr and starts serving set on it. Caller must hold g.mu.
func (g *Gateway) listen(addr string, set *gwPortSet) (*gwListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gateway listener %s: %w", addr, err)
	}
	name := "gateway:" + strconv.FormatUint(uint64(set.port), 10)
	if h, _, _ := net.SplitHostPort(addr); h != "" && h != g.BindAddress {
		name = "gateway:" + addr
	}
	l := newGWListener(g, name, set.port, ln)
	l.set.Store(set)
	g.log().Debug("gateway listening", zap.String("listener", name), zap.String("addr", ln.Addr().String()))
	if g.OnListen != nil {
		g.OnListen(name, ln.Addr())
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// hostMatches reports whether host falls within one of s's hosts.
func (s *gwServer) hostMatches(host string) bool {
	for _, h := range s.hosts {
		if config.HostMatches(h, host) {
			return true
		}
	}
	return false
}

// allows reports whether s exposes host as routed by the VirtualServices
// ("namespace/name") of its virtual host: a matching server host whose
// namespace part is "*" or one of theirs. (Rules of VirtualServices from
// several namespaces for one host are merged; the host is served when
// any of them may bind.)
func (s *gwServer) allows(host string, vss []string) bool {
	for i, h := range s.hosts {
		if !config.HostMatches(h, host) {
			continue
		}
		if s.hostNS[i] == "*" {
			return true
		}
		for _, vs := range vss {
			if ns, _, _ := strings.Cut(vs, "/"); ns == s.hostNS[i] {
				return true
			}
		}
	}
	return false
}

// bySNI picks the TLS server for a ClientHello's server name as Envoy's
// filter-chain match does: an exact server host, then the longest
// matching wildcard, then a server for every host ("*", also the only
// one that takes a connection without SNI). nil means none matches.
func (ps *gwPortSet) bySNI(sni string) *gwServer {
	var best *gwServer
	score := -1
	for _, s := range ps.servers {
		for _, h := range s.hosts {
			sc := -1
			switch {
			case h == "*":
				sc = 0
			case sni == "":
			case h == sni:
				sc = 1 << 16
			case strings.HasPrefix(h, "*") && config.HostMatches(h, sni):
				sc = len(h)
			}
			if sc > score {
				best, score = s, sc
			}
		}
	}
	return best
}
