package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/remora-mesh/remora/admin"
	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/proxy"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/telemetry"
	"github.com/remora-mesh/remora/upstream"
)

// runFlags are the flags of `remora run` (DESIGN.md).
type runFlags struct {
	config        string
	role          string
	labels        labelsFlag
	namespace     string
	domain        string
	outboundPort  int
	inboundPort   int
	adminAddr     string
	statsAddr     string
	healthAddr    string
	drainDuration time.Duration
	logLevel      string
	accessLog     string
	dnsServer     string
	bindAddress   string
	exitOnZero    bool
	compat        string
	adminRemote   bool
	maxConns      int
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "config directory of Istio YAML (required)")
	fs.StringVar(&f.role, "role", "sidecar", "sidecar or gateway")
	fs.Var(&f.labels, "labels", "this workload's labels, k=v,...")
	fs.StringVar(&f.namespace, "namespace", "default", "this workload's namespace")
	fs.StringVar(&f.domain, "domain", "cluster.local", "cluster domain")
	fs.IntVar(&f.outboundPort, "outbound-port", 15001, "outbound capture port")
	fs.IntVar(&f.inboundPort, "inbound-port", 15006, "inbound capture port")
	fs.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:15000", "admin API address")
	fs.StringVar(&f.statsAddr, "stats-addr", ":15090", "Prometheus stats address")
	fs.StringVar(&f.healthAddr, "health-addr", ":15021", "readiness address")
	fs.DurationVar(&f.drainDuration, "drain-duration", 5*time.Second, "how long SIGTERM lets requests finish")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.accessLog, "access-log", "stdout", "stdout, off or a file path")
	fs.StringVar(&f.dnsServer, "dns-server", "", "DNS server HOST:PORT (default: the system resolver)")
	fs.StringVar(&f.bindAddress, "bind-address", "", "restrict every listener to this address")
	fs.StringVar(&f.compat, "compat", "", `emulate an older Istio where its defaults changed: "1.27" adds the mirror Host "-shadow" suffix`)
	fs.BoolVar(&f.exitOnZero, "exit-on-zero-active-connections", true,
		"on SIGTERM exit as soon as requests in flight are done; false waits the whole --drain-duration (Istio's default)")
	fs.BoolVar(&f.adminRemote, "admin-allow-remote", false, "allow a non-loopback --admin-addr")
	fs.IntVar(&f.maxConns, "max-downstream-connections", 100000,
		"connections each capture listener serves at once; beyond it new ones are closed at accept (0: no limit)")
}

func (f *runFlags) check() error {
	switch {
	case f.config == "":
		return errors.New("--config DIR is required")
	case f.role != "sidecar" && f.role != "gateway":
		return fmt.Errorf("--role %q: want sidecar or gateway", f.role)
	case f.compat != "" && f.compat != "1.27":
		return fmt.Errorf("--compat %q: want 1.27 or nothing", f.compat)
	case f.outboundPort < 0 || f.outboundPort > 65535 || f.inboundPort < 0 || f.inboundPort > 65535:
		return errors.New("port flags take a number 0-65535")
	}
	for _, a := range []string{f.adminAddr, f.statsAddr, f.healthAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("address %q: want HOST:PORT", a)
		}
	}
	return checkAdminAddr(f.adminAddr, f.adminRemote)
}

// labelsFlag parses k=v,k=v.
type labelsFlag map[string]string

func (l *labelsFlag) String() string {
	var parts []string
	for k, v := range *l {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (l *labelsFlag) Set(s string) error {
	if *l == nil {
		*l = map[string]string{}
	}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("label %q: want key=value", kv)
		}
		(*l)[k] = v
	}
	return nil
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := newFlags("run", stderr)
	f.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if err := f.check(); err != nil {
		fmt.Fprintf(stderr, "remora run: %v\n", err)
		return 2
	}
	lvl, err := zap.ParseAtomicLevel(f.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "remora run: --log-level %q: %v\n", f.logLevel, err)
		return 2
	}
	log, err := newLogger(lvl, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "remora run: %v\n", err)
		return 2
	}
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if l := setMemoryLimit(os.Getenv, cgroupMemoryFiles); l > 0 {
		log.Info("GOMEMLIMIT from the cgroup memory limit", zap.Int64("bytes", l))
	}
	p := newProcess(&f, log)
	p.level = lvl
	if err := p.run(ctx); err != nil {
		log.Error("exiting", zap.Error(err))
		return 1
	}
	return 0
}

func newLogger(lvl zap.AtomicLevel, w io.Writer) (*zap.Logger, error) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

// process is one running `remora run`: its config, snapshot store and
// listeners.
type process struct {
	f       *runFlags
	log     *zap.Logger
	store   *snapshot.Store
	metrics *telemetry.Metrics
	level   zap.AtomicLevel
	// upstream holds the live clusters, updated with every snapshot;
	// tel, alog and http are the rest of the data plane (dataplane.go).
	upstream *upstream.Manager
	tel      *telemetry.Telemetry
	alog     *telemetry.AccessLog
	http     *proxy.HTTPServer
	ready    atomic.Bool
	// stopListeners drains the proxy listeners; drainListeners (admin
	// /drain_listeners) runs it once.
	drainMu       sync.Mutex
	stopListeners func(context.Context)
	drained       bool
	// onListen, if set, learns each listener's bound address (the demo
	// binds ephemeral ports).
	onListen func(name string, addr net.Addr)
	hup      chan struct{}
	quit     chan struct{}
	once     sync.Once
}

func newProcess(f *runFlags, log *zap.Logger) *process {
	return &process{f: f, log: log, store: &snapshot.Store{}, metrics: telemetry.NewMetrics(), upstream: &upstream.Manager{},
		hup: make(chan struct{}, 1), quit: make(chan struct{})}
}

func (p *process) snapshotOptions() snapshot.Options {
	return snapshot.Options{Namespace: p.f.namespace, Domain: p.f.domain, Labels: p.f.labels, Gateway: p.f.role == "gateway"}
}

// onLoad publishes a good load and keeps the last good snapshot on a bad
// one.
func (p *process) onLoad(set *config.Set, diags config.Diagnostics, err error) {
	if err == nil {
		err = diags.Err()
	}
	var snap *snapshot.Snapshot
	if err == nil {
		snap, err = snapshot.Build(set, diags, p.snapshotOptions())
	}
	if err != nil {
		p.metrics.ConfigReloads.WithLabelValues("error").Inc()
		for _, d := range diags.Errors() {
			p.log.Error("config error", zap.String("at", fmt.Sprintf("%s:%d", d.File, d.Line)), zap.String("problem", d.String()))
		}
		p.log.Error("config rejected; keeping the last good snapshot", zap.Error(err))
		return
	}
	for _, d := range diags {
		if d.Severity == config.Warning {
			p.log.Warn("config warning", zap.String("problem", d.String()))
		}
	}
	p.upstream.Update(snap)
	p.store.Swap(snap)
	p.metrics.ConfigReloads.WithLabelValues("success").Inc()
	p.log.Info("config loaded", zap.Uint64("version", snap.Version), zap.Int("resources", set.Count()), zap.Int("clusters", len(snap.Clusters)))
	releaseLoadGarbage()
}

// loadReleaseMin is the heap size (objects, live or not yet collected)
// from which releaseLoadGarbage collects. Below it the runtime's own
// minimum heap (4 MB) dominates and an early collection would only make
// the GC's own state resident sooner (+0.6 MB RSS at start with bookinfo).
const loadReleaseMin = 16 << 20

// releaseLoadGarbage returns the memory a config load used and dropped
// (YAML trees, decoder state, the previous snapshot once its requests end)
// to the OS now, when the heap holds at least loadReleaseMin; it reports
// whether it did. A large load allocates several times the snapshot it
// keeps (60 MB for 1,000 services, whose snapshot is 12 MB); left to the
// background scavenger, those pages stay resident for minutes. It costs
// one collection per load, never anything per request.
func releaseLoadGarbage() bool {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Uint64() < loadReleaseMin {
		return false
	}
	debug.FreeOSMemory()
	return true
}

// announce logs a bound listener and tells onListen.
func (p *process) announce(name string, addr net.Addr) {
	p.log.Info("listening", zap.String("listener", name), zap.String("addr", addr.String()))
	if p.onListen != nil {
		p.onListen(name, addr)
	}
}

// bindAddr applies --bind-address to a listener address.
func (p *process) bindAddr(addr string) string {
	if p.f.bindAddress == "" {
		return addr
	}
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(p.f.bindAddress, port)
}

func (p *process) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := p.startDataPlane(); err != nil {
		return err
	}
	defer p.stopDataPlane()
	a := &admin.Server{Store: p.store, Metrics: p.metrics, Ready: &p.ready, Upstream: p.upstream, Level: p.level,
		Quit: func() { p.once.Do(func() { close(p.quit) }) }, Drain: p.drainListeners}
	servers := []struct {
		name, addr string
		h          http.Handler
	}{
		{"admin", p.f.adminAddr, a.AdminHandler()},
		{"health", p.bindAddr(p.f.healthAddr), a.HealthHandler()},
		{"stats", p.bindAddr(p.f.statsAddr), a.StatsHandler()},
	}
	var running []*http.Server
	errc := make(chan error, len(servers)+2)
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", s.name, err)
		}
		hs := &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
		running = append(running, hs)
		p.announce(s.name, ln.Addr())
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", s.name, err)
			}
		}()
	}
	stopProxy, err := p.startProxyListeners(p.http, errc)
	if err != nil {
		return err
	}
	w := &config.Watcher{Dir: p.f.config, Opts: config.Options{Namespace: p.f.namespace, Domain: p.f.domain},
		Trigger: p.hup, OnLoad: p.onLoad,
		OnWatchError: func(err error) { p.log.Warn("config watch", zap.Error(err)) }}
	stopProxy = p.startGatewayListeners(w, errc, stopProxy)
	p.drainMu.Lock()
	p.stopListeners = stopProxy
	p.drainMu.Unlock()
	loaded := make(chan struct{})
	var loadOnce sync.Once
	onLoad := w.OnLoad
	w.OnLoad = func(s *config.Set, d config.Diagnostics, err error) {
		onLoad(s, d, err)
		loadOnce.Do(func() { close(loaded) })
	}
	go func() {
		if err := w.Run(ctx); err != nil {
			errc <- fmt.Errorf("config watch: %w", err)
		}
	}()
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	go func() {
		for range hups {
			select {
			case p.hup <- struct{}{}:
			default:
			}
		}
	}()
	<-loaded
	p.ready.Store(true)
	select {
	case <-ctx.Done():
	case <-p.quit:
	case err = <-errc:
	}
	p.ready.Store(false)
	p.drain(stopProxy, running)
	return err
}

// startProxyListeners binds the sidecar's capture listeners — outbound
// (--outbound-port, 15001) and inbound (--inbound-port, 15006), on every
// address or --bind-address — and serves them with h as the HTTP chain
// (nil closes HTTP connections). It returns once both are bound, so
// readiness follows it; stop drains them until its context ends. The
// gateway role has no capture listeners.
func (p *process) startProxyListeners(h proxy.HTTPConnServer, errc chan<- error) (stop func(context.Context), err error) {
	if p.f.role != "sidecar" {
		return func(context.Context) {}, nil
	}
	var lns []*proxy.Listener
	stop = func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, l := range lns {
			wg.Add(1)
			go func() { defer wg.Done(); _ = l.Shutdown(ctx) }()
		}
		wg.Wait()
	}
	for _, c := range []struct {
		name    string
		port    int
		inbound bool
	}{{"outbound", p.f.outboundPort, false}, {"inbound", p.f.inboundPort, true}} {
		addr := p.bindAddr(net.JoinHostPort("", fmt.Sprint(c.port)))
		// The inbound listener asks for IP_TRANSPARENT so TPROXY
		// interception works when remora has CAP_NET_ADMIN; without it
		// REDIRECT interception still does.
		ln, tproxy, err := proxy.Listen(context.Background(), addr, c.inbound)
		if err != nil {
			stop(context.Background())
			return nil, fmt.Errorf("%s listener: %w", c.name, err)
		}
		l := &proxy.Listener{Name: c.name, Inbound: c.inbound, Store: p.store, Upstream: p.upstream, HTTP: h, Log: p.log,
			MaxConnections: p.f.maxConns, Telemetry: p.tel, Local: p.localLabels()}
		lns = append(lns, l)
		p.log.Info("transparent", zap.String("listener", c.name), zap.Bool("transparent", tproxy))
		p.announce(c.name, ln.Addr())
		go func() {
			if err := l.Serve(ln); !errors.Is(err, proxy.ErrListenerClosed) {
				errc <- fmt.Errorf("%s listener: %w", c.name, err)
			}
		}()
	}
	return stop, nil
}
