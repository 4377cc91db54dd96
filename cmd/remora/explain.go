package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/remora-mesh/remora/config"
	"github.com/remora-mesh/remora/routing"
	"github.com/remora-mesh/remora/snapshot"
	"github.com/remora-mesh/remora/upstream"
)

// headerFlag collects repeated -H 'Name: value' flags.
type headerFlag http.Header

func (h headerFlag) String() string { return "" }

func (h headerFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("header %q: want 'Name: value'", s)
	}
	http.Header(h).Add(strings.TrimSpace(k), strings.TrimSpace(v))
	return nil
}

// explanation is what `remora explain` reports; --output json prints it.
type explanation struct {
	Method         string         `json:"method"`
	URL            string         `json:"url"`
	Port           uint32         `json:"port"`
	Outcome        string         `json:"outcome"`
	Answer         string         `json:"answer,omitempty"`
	VirtualHost    string         `json:"virtual_host,omitempty"`
	VirtualService string         `json:"virtual_service,omitempty"`
	Rule           *int           `json:"rule,omitempty"`
	RouteName      string         `json:"route_name,omitempty"`
	Fault          string         `json:"fault,omitempty"`
	Timeout        string         `json:"timeout"`
	Retries        string         `json:"retries"`
	Mirrors        []string       `json:"mirrors,omitempty"`
	Destinations   []explainedDst `json:"destinations,omitempty"`
}

type explainedDst struct {
	Cluster   string             `json:"cluster"`
	Weight    uint32             `json:"weight"`
	Endpoints int                `json:"endpoints"`
	Missing   bool               `json:"missing,omitempty"`
	Settings  *upstream.Settings `json:"settings,omitempty"`
}

// cmdExplain prints how one request would be handled. It sends nothing.
func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("explain", stderr)
	dir := fs.String("config", "", "config directory (required)")
	ns := fs.String("namespace", "default", "this workload's namespace")
	domain := fs.String("domain", "cluster.local", "cluster domain")
	role := fs.String("role", "sidecar", "sidecar or gateway")
	output := fs.String("output", "text", "text or json")
	var labels labelsFlag
	fs.Var(&labels, "labels", "this workload's labels, k=v,...")
	hdr := headerFlag{}
	fs.Var(hdr, "H", "request header 'Name: value' (repeatable)")
	var pos []string
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if *dir == "" || len(pos) != 2 {
		fmt.Fprintln(stderr, "usage: remora explain --config DIR [--labels k=v] [-H 'Name: value']... METHOD URL")
		return 2
	}
	set, diags, err := config.Load(*dir, config.Options{Namespace: *ns, Domain: *domain})
	if err == nil {
		err = diags.Err()
	}
	var snap *snapshot.Snapshot
	if err == nil {
		snap, err = snapshot.Build(set, diags, snapshot.Options{Namespace: *ns, Domain: *domain, Labels: labels, Gateway: *role == "gateway"})
	}
	if err != nil {
		fmt.Fprintf(stderr, "remora explain: %v\n", err)
		return 1
	}
	ex, err := explain(snap, strings.ToUpper(pos[0]), pos[1], http.Header(hdr))
	if err != nil {
		fmt.Fprintf(stderr, "remora explain: %v\n", err)
		return 2
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(ex)
		return 0
	}
	ex.print(stdout)
	return 0
}

// explain matches one request against snap.
func explain(snap *snapshot.Snapshot, method, raw string, h http.Header) (*explanation, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("URL %q: want an absolute URL such as http://reviews:9080/reviews/1", raw)
	}
	port := uint32(80)
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("URL %q: bad port", raw)
		}
		port = uint32(n)
	}
	req := routing.Request{Method: method, Scheme: u.Scheme, Authority: u.Host, Path: u.RequestURI(), Header: h, Port: port}
	res := snap.Routes.Match(&req)
	ex := &explanation{Method: method, URL: raw, Port: port, Outcome: res.Outcome.String(), Timeout: "none", Retries: "none"}
	switch res.Outcome {
	case routing.UnknownHost:
		ex.Answer = "no virtual host: passed through to the original destination (ALLOW_ANY)"
		if snap.Outbound == snapshot.RegistryOnly {
			ex.Answer = "no virtual host: 502 with an empty body (REGISTRY_ONLY)"
		}
		return ex, nil
	case routing.NotFound:
		ex.VirtualHost = res.VirtualHost.Name
		ex.Answer = "404, flag NR: the host is known but no rule matches"
		return ex, nil
	}
	ex.describeRoute(snap, &res)
	return ex, nil
}

func (ex *explanation) describeRoute(snap *snapshot.Snapshot, res *routing.Result) {
	rt := res.Route
	ex.VirtualHost, ex.VirtualService, ex.RouteName = res.VirtualHost.Name, rt.VirtualService, res.Name
	if rt.VirtualService != "" {
		ex.Rule = &rt.Rule
	}
	if f := rt.Fault; f != nil {
		var parts []string
		if f.Delay.Fixed > 0 && f.Delay.Percent > 0 {
			parts = append(parts, fmt.Sprintf("delay %s at %g%%", f.Delay.Fixed, f.Delay.Percent))
		}
		if f.Abort.Percent > 0 && (f.Abort.HTTPStatus != 0 || f.Abort.HasGRPCStatus) {
			status := strconv.Itoa(f.Abort.HTTPStatus)
			if f.Abort.HTTPStatus == 0 {
				status = "grpc-status " + strconv.Itoa(f.Abort.GRPCStatus)
			}
			parts = append(parts, fmt.Sprintf("abort %s at %g%%", status, f.Abort.Percent))
		}
		ex.Fault = strings.Join(parts, ", ")
	}
	if rt.Timeout > 0 {
		ex.Timeout = rt.Timeout.String()
	}
	if p := rt.Retry; p != nil && p.Attempts > 0 {
		ex.Retries = fmt.Sprintf("%d attempts on %s", p.Attempts, p.On)
		if len(p.StatusCodes) > 0 {
			ex.Retries += fmt.Sprintf(" (status codes %v)", p.StatusCodes)
		}
		if p.PerTryTimeout > 0 {
			ex.Retries += ", per try " + p.PerTryTimeout.String()
		}
		ex.Retries += fmt.Sprintf(", back-off %s..%s", p.BaseInterval, p.MaxInterval)
	}
	for _, m := range rt.Mirrors {
		ex.Mirrors = append(ex.Mirrors, fmt.Sprintf("%s at %g%%", m.Cluster, float64(m.PerMillion)/10000))
	}
	switch {
	case rt.Redirect != nil:
		ex.Answer = fmt.Sprintf("redirect %d", rt.Redirect.Code)
	case rt.DirectResponse != nil:
		ex.Answer = fmt.Sprintf("direct response %d", rt.DirectResponse.Status)
	}
	var total uint64
	for _, d := range rt.Destinations {
		total += uint64(d.Weight)
	}
	for _, d := range rt.Destinations {
		ed := explainedDst{Cluster: d.Cluster, Weight: uint32((uint64(d.Weight)*100 + total/2) / total)}
		if c := snap.Clusters[d.Cluster]; c != nil {
			s := upstream.Describe(c)
			ed.Endpoints, ed.Settings = len(c.Endpoints), &s
		} else {
			ed.Missing = true
		}
		ex.Destinations = append(ex.Destinations, ed)
	}
}

func (ex *explanation) print(w io.Writer) {
	fmt.Fprintf(w, "%s %s (port %d)\n", ex.Method, ex.URL, ex.Port)
	if ex.VirtualHost != "" {
		fmt.Fprintf(w, "  virtual host: %s\n", ex.VirtualHost)
	}
	if ex.Answer != "" && ex.Outcome != routing.Matched.String() {
		fmt.Fprintf(w, "  answer: %s\n", ex.Answer)
		return
	}
	if ex.VirtualService != "" {
		fmt.Fprintf(w, "  rule: VirtualService %s http[%d]", ex.VirtualService, *ex.Rule)
	} else {
		fmt.Fprint(w, "  rule: default route (no VirtualService)")
	}
	if ex.RouteName != "" {
		fmt.Fprintf(w, " %q", ex.RouteName)
	}
	fmt.Fprintln(w)
	if ex.Answer != "" {
		fmt.Fprintf(w, "  answer: %s\n", ex.Answer)
	}
	if ex.Fault != "" {
		fmt.Fprintf(w, "  fault: %s\n", ex.Fault)
	}
	fmt.Fprintf(w, "  timeout: %s\n  retries: %s\n", ex.Timeout, ex.Retries)
	for _, m := range ex.Mirrors {
		fmt.Fprintf(w, "  mirror: %s\n", m)
	}
	for _, d := range ex.Destinations {
		fmt.Fprintf(w, "  cluster: %s weight: %d\n", d.Cluster, d.Weight)
		if d.Missing {
			fmt.Fprintln(w, "    no such cluster: 503, flag NC")
			continue
		}
		s := d.Settings
		fmt.Fprintf(w, "    endpoints: %d  lb: %s  connect timeout: %s  idle timeout: %s\n", d.Endpoints, s.LB, s.ConnectTimeout, s.IdleTimeout)
		fmt.Fprintf(w, "    limits: max connections %s, max pending %s, max requests %s, max retries %s",
			limit(s.Limits.MaxConnections), limit(s.Limits.MaxPendingRequests), limit(s.Limits.MaxRequests), limit(s.Limits.MaxRetries))
		if s.Limits.MaxRequestsPerConnection > 0 {
			fmt.Fprintf(w, ", %d requests per connection", s.Limits.MaxRequestsPerConnection)
		}
		fmt.Fprintln(w)
		if o := s.Outlier; o != nil {
			fmt.Fprintf(w, "    outlier detection: %d consecutive 5xx, %d gateway errors, every %s, eject %s × count, max %g%%, min healthy %g%%\n",
				o.Consecutive5xxErrors, o.ConsecutiveGatewayErrors, o.Interval, o.BaseEjectionTime, o.MaxEjectionPercent, o.MinHealthPercent)
		} else {
			fmt.Fprintln(w, "    outlier detection: none")
		}
		if s.TLS != "" {
			fmt.Fprintf(w, "    tls: %s\n", s.TLS)
		}
	}
}

func limit(n int64) string {
	if n >= upstream.Unlimited {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}
