package config

import (
	"fmt"
	"sort"
	"strings"
)

// Severity ranks a Diagnostic.
type Severity int

const (
	// Note is information only: a document remora skips on purpose.
	Note Severity = iota
	// Warning is what Istio accepts but `istioctl analyze` flags, or what
	// remora ignores; the config still loads.
	Warning
	// Error is what Istio's validation would reject; the config does not
	// load.
	Error
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	}
	return "note"
}

// A Diagnostic is one problem found in a config file, with its place.
type Diagnostic struct {
	File     string
	Line     int
	Severity Severity
	// Resource is "Kind/namespace/name", or empty when the problem is not
	// inside one resource (a YAML syntax error).
	Resource string
	// Path is the field path ("spec.http[0].route[1].weight"), if any.
	Path string
	Msg  string
}

// String formats d as `file:line: severity: Kind/ns/name: path: message`.
func (d Diagnostic) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: %s: ", d.File, d.Line, d.Severity)
	if d.Resource != "" {
		b.WriteString(d.Resource)
		b.WriteString(": ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Diagnostics is a list of problems.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an Error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Errors returns only the Error diagnostics.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == Error {
			out = append(out, d)
		}
	}
	return out
}

// Sort orders diagnostics by file, line, then message, so output is stable.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Msg < b.Msg
	})
}

// Err returns the diagnostics' errors as one error, or nil when there are
// none.
func (ds Diagnostics) Err() error {
	errs := ds.Errors()
	if len(errs) == 0 {
		return nil
	}
	return &LoadError{Diags: errs}
}

// LoadError is a config that failed to load because of its Diags.
type LoadError struct {
	Diags Diagnostics
}

func (e *LoadError) Error() string {
	if len(e.Diags) == 1 {
		return e.Diags[0].String()
	}
	return fmt.Sprintf("%s (and %d more errors)", e.Diags[0], len(e.Diags)-1)
}
