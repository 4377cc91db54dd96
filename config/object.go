package config

import "sort"

// ObjectMeta is the Kubernetes metadata remora reads.
type ObjectMeta struct {
	Name string `json:"name"`
	// Namespace defaults to the loader's namespace (--namespace).
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ignoredFields are metadata fields a kubectl-style file may carry and
// remora has no use for.
func (ObjectMeta) ignoredFields() []string {
	return []string{"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
		"deletionGracePeriodSeconds", "managedFields", "ownerReferences", "finalizers", "generateName", "selfLink"}
}

// Source is where a resource came from: its file and the line of its
// first key. While Load or Parse validates the resource it also knows the
// line of every field path inside it; they are dropped before the Set is
// returned.
type Source struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	lines map[string]int
}

// LineOf returns the line of a field path ("spec.http[0].route"), or of
// its nearest recorded parent, or the resource's line (always, once Load
// or Parse has returned).
func (s *Source) LineOf(path string) int {
	for path != "" {
		if l, ok := s.lines[path]; ok {
			return l
		}
		i := lastSep(path)
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return s.Line
}

func lastSep(p string) int {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '.' || p[i] == '[' {
			return i
		}
	}
	return -1
}

// Object is one loaded Istio resource of spec type S.
type Object[S any] struct {
	Kind       string     `json:"kind"`
	APIVersion string     `json:"apiVersion"`
	Meta       ObjectMeta `json:"metadata"`
	Spec       S          `json:"spec"`
	Src        Source     `json:"source"`
}

// Key is "Kind/namespace/name", as diagnostics name a resource.
func (o *Object[S]) Key() string { return o.Kind + "/" + o.Meta.Namespace + "/" + o.Meta.Name }

// Set is every resource loaded from one config directory, in load order
// (files sorted by path, documents in file order).
type Set struct {
	VirtualServices  []*Object[VirtualService]  `json:"virtualServices,omitempty"`
	DestinationRules []*Object[DestinationRule] `json:"destinationRules,omitempty"`
	Gateways         []*Object[Gateway]         `json:"gateways,omitempty"`
	ServiceEntries   []*Object[ServiceEntry]    `json:"serviceEntries,omitempty"`
	WorkloadEntries  []*Object[WorkloadEntry]   `json:"workloadEntries,omitempty"`
	Sidecars         []*Object[Sidecar]         `json:"sidecars,omitempty"`
}

// dropLines forgets the field lines of every resource in s.
func (s *Set) dropLines() {
	dropObjectLines(s.VirtualServices)
	dropObjectLines(s.DestinationRules)
	dropObjectLines(s.Gateways)
	dropObjectLines(s.ServiceEntries)
	dropObjectLines(s.WorkloadEntries)
	dropObjectLines(s.Sidecars)
}

func dropObjectLines[T any](objs []*Object[T]) {
	for _, o := range objs {
		o.Src.lines = nil
	}
}

// Count returns how many resources s holds.
func (s *Set) Count() int {
	return len(s.VirtualServices) + len(s.DestinationRules) + len(s.Gateways) +
		len(s.ServiceEntries) + len(s.WorkloadEntries) + len(s.Sidecars)
}

// Kinds lists the resource kinds remora implements, sorted.
func Kinds() []string {
	k := []string{"VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "WorkloadEntry", "Sidecar"}
	sort.Strings(k)
	return k
}
