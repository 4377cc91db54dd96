package config

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"time"
)

// checker collects the problems of one resource, each placed at the line
// of its field path.
type checker struct {
	src  *Source
	res  string
	opts Options
	ds   Diagnostics
}

func (c *checker) add(sev Severity, path, format string, args ...any) {
	c.ds = append(c.ds, Diagnostic{File: c.src.File, Line: c.src.LineOf(path), Severity: sev,
		Resource: c.res, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) errf(path, format string, args ...any)  { c.add(Error, path, format, args...) }
func (c *checker) warnf(path, format string, args ...any) { c.add(Warning, path, format, args...) }

// validate checks one decoded resource the way Istio's validation webhook
// does and returns every problem.
func validate(obj any, opts Options) Diagnostics {
	switch o := obj.(type) {
	case *Object[VirtualService]:
		c := &checker{src: &o.Src, res: o.Key(), opts: opts}
		c.virtualService(&o.Spec)
		return c.ds
	case *Object[DestinationRule]:
		c := &checker{src: &o.Src, res: o.Key(), opts: opts}
		c.destinationRule(&o.Spec)
		return c.ds
	case *Object[Gateway]:
		c := &checker{src: &o.Src, res: o.Key(), opts: opts}
		c.gateway(&o.Spec)
		return c.ds
	case *Object[ServiceEntry]:
		c := &checker{src: &o.Src, res: o.Key(), opts: opts}
		c.serviceEntry(&o.Spec)
		return c.ds
	case *Object[WorkloadEntry]:
		c := &checker{src: &o.Src, res: o.Key(), opts: opts}
		c.workloadEntry("spec", &o.Spec, false)
		return c.ds
	case *Object[Sidecar]:
		c := &checker{src: &o.Src, res: o.Key(), opts: opts}
		c.sidecar(&o.Spec)
		return c.ds
	}
	return nil
}

// duration checks a duration as Istio's ValidateDuration does.
func (c *checker) duration(path string, d *Duration) {
	if d == nil {
		return
	}
	if d.Duration < time.Millisecond {
		c.errf(path, "duration must be at least 1ms, got %s", d.Duration)
	} else if d.Duration%time.Millisecond != 0 {
		c.errf(path, "only durations to ms precision are supported, got %s", d.Duration)
	}
}

func (c *checker) port(path string, p uint32) {
	if p == 0 || p > 65535 {
		c.errf(path, "port number %d is out of range 1-65535", p)
	}
}

func (c *checker) optPort(path string, p uint32) {
	if p > 65535 {
		c.errf(path, "port number %d is out of range 0-65535", p)
	}
}

func (c *checker) percent(path string, p *Percent) {
	if p != nil && (p.Value < 0 || p.Value > 100) {
		c.errf(path, "percentage %v must be within 0-100", p.Value)
	}
}

func (c *checker) regex(path, re string) {
	if _, err := regexp.Compile(re); err != nil {
		c.errf(path, "invalid RE2 regex %q: %v", re, err)
	}
}

func (c *checker) stringMatch(path string, m *StringMatch) {
	if m == nil {
		return
	}
	n := 0
	for _, p := range []*string{m.Exact, m.Prefix, m.Regex} {
		if p != nil {
			n++
		}
	}
	if n > 1 {
		c.errf(path, "only one of exact, prefix or regex may be set")
	}
	if m.Regex != nil {
		c.regex(path+".regex", *m.Regex)
	}
}

func (c *checker) host(path, h string, wildcard bool) {
	if err := checkHost(h, wildcard); err != nil {
		c.errf(path, "%v", err)
	}
}

func (c *checker) labels(path string, m map[string]string) {
	for k := range m {
		if k == "" {
			c.errf(path, "label keys must not be empty")
		}
	}
}

func (c *checker) base64(path, s string) {
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		c.errf(path, "not valid base64: %v", err)
	}
}
