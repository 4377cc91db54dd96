package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Options are the loader's defaults.
type Options struct {
	// Namespace is given to resources without metadata.namespace. Empty
	// means "default".
	Namespace string
	// Domain is the cluster domain short hosts expand into. Empty means
	// "cluster.local".
	Domain string
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Domain == "" {
		o.Domain = "cluster.local"
	}
	return o
}

const istioGroup = "networking.istio.io"

var istioVersions = map[string]bool{"v1alpha3": true, "v1beta1": true, "v1": true}

// unimplementedKinds are networking.istio.io kinds remora knows and ignores.
var unimplementedKinds = map[string]bool{"EnvoyFilter": true, "WorkloadGroup": true, "ProxyConfig": true}

// Load reads every *.yaml, *.yml and *.json file below dir (following
// symlinks, skipping names that start with "."), decodes and validates
// each resource, and returns them with every problem found. The Set is
// complete only when the Diagnostics hold no error. An error is returned
// only when dir itself cannot be read.
func Load(dir string, opts Options) (*Set, Diagnostics, error) {
	files, err := ConfigFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	l := newLoader(opts)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			l.diags = append(l.diags, Diagnostic{File: f, Line: 1, Severity: Error, Msg: err.Error()})
			continue
		}
		l.parse(f, data)
	}
	return l.finish()
}

// Parse decodes and validates the resources in one file's contents, as
// Load does for each file.
func Parse(file string, data []byte, opts Options) (*Set, Diagnostics) {
	l := newLoader(opts)
	l.parse(file, data)
	s, ds, _ := l.finish()
	return s, ds
}

// ConfigFiles lists the config files below dir in sorted order (or dir
// itself when it is a file), following
// symlinks (each real file once) and skipping entries whose name starts
// with "." (a ConfigMap mount's ..data and ..<timestamp> entries).
func ConfigFiles(dir string) ([]string, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("config dir: %w", err)
	}
	if !st.IsDir() {
		return []string{dir}, nil
	}
	var files []string
	seen := map[string]bool{}
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		if depth > 32 {
			return nil
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("config dir: %w", err)
		}
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			p := filepath.Join(d, name)
			fi, err := os.Stat(p) // follows symlinks
			if err != nil {
				continue // a dangling link mid-swap
			}
			real, err := filepath.EvalSymlinks(p)
			if err != nil || seen[real] {
				continue
			}
			seen[real] = true
			if fi.IsDir() {
				if err := walk(p, depth+1); err != nil {
					return err
				}
				continue
			}
			switch strings.ToLower(filepath.Ext(name)) {
			case ".yaml", ".yml", ".json":
				files = append(files, p)
			}
		}
		return nil
	}
	if err := walk(dir, 0); err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

type loader struct {
	opts  Options
	set   *Set
	diags Diagnostics
	// first records where each kind/namespace/name was first defined.
	first map[string]string
}

func newLoader(opts Options) *loader {
	return &loader{opts: opts.withDefaults(), set: &Set{}, first: map[string]string{}}
}

// finish runs the cross-resource checks, then drops each resource's
// field lines: every diagnostic has been placed, and a proxy keeps its
// Set for as long as the snapshot lives (a map of every field path is
// about a third of a parsed resource).
func (l *loader) finish() (*Set, Diagnostics, error) {
	l.diags = append(l.diags, analyze(l.set, l.opts)...)
	l.diags.Sort()
	l.set.dropLines()
	return l.set, l.diags, nil
}

var yamlLine = regexp.MustCompile(`line (\d+):?\s*(.*)`)

func (l *loader) parse(file string, data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				line, _ = strconv.Atoi(m[1])
				msg = m[2]
			}
			l.diags = append(l.diags, Diagnostic{File: file, Line: line, Severity: Error, Msg: "YAML syntax: " + msg})
			return
		}
		if len(doc.Content) == 0 {
			continue
		}
		l.document(file, doc.Content[0])
	}
}

// scalarAt returns the string value of key in mapping n.
func scalarAt(n *yaml.Node, key string) (string, *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
				return v.Value, v
			}
			return "", v
		}
	}
	return "", nil
}

func (l *loader) document(file string, n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.diags = append(l.diags, Diagnostic{File: file, Line: n.Line, Severity: Error, Msg: "document is not a mapping"})
		return
	}
	apiVersion, _ := scalarAt(n, "apiVersion")
	kind, _ := scalarAt(n, "kind")
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		group, version = "", apiVersion
	}
	at := func(sev Severity, format string, args ...any) {
		l.diags = append(l.diags, Diagnostic{File: file, Line: n.Line, Severity: sev, Resource: l.refOf(n, kind), Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case apiVersion == "" || kind == "":
		at(Error, "document has no apiVersion or kind")
	case group == "" && kind == "List":
		_, items := scalarAt(n, "items")
		if items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				l.document(file, it)
			}
		}
	case group == istioGroup && !istioVersions[version]:
		at(Error, "unknown apiVersion %q (want %s/v1, v1beta1 or v1alpha3)", apiVersion, istioGroup)
	case group == istioGroup && unimplementedKinds[kind]:
		at(Warning, "kind %s is not implemented by remora; ignored", kind)
	case group == istioGroup:
		l.istio(file, n, kind, apiVersion)
	case strings.HasSuffix(group, ".istio.io"):
		at(Warning, "%s %s is not implemented by remora; ignored", apiVersion, kind)
	default:
		at(Note, "skipped %s %s: not an Istio networking resource", apiVersion, kind)
	}
}

// refOf names the resource of a document as well as it can before decoding.
func (l *loader) refOf(n *yaml.Node, kind string) string {
	_, md := scalarAt(n, "metadata")
	if md == nil || md.Kind != yaml.MappingNode {
		return ""
	}
	name, _ := scalarAt(md, "name")
	ns, _ := scalarAt(md, "namespace")
	if ns == "" {
		ns = l.opts.Namespace
	}
	return kind + "/" + ns + "/" + name
}

var topLevel = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "spec": true, "status": true}

func (l *loader) istio(file string, n *yaml.Node, kind, apiVersion string) {
	switch kind {
	case "VirtualService":
		addObject(l, &l.set.VirtualServices, file, n, kind, apiVersion)
	case "DestinationRule":
		addObject(l, &l.set.DestinationRules, file, n, kind, apiVersion)
	case "Gateway":
		addObject(l, &l.set.Gateways, file, n, kind, apiVersion)
	case "ServiceEntry":
		addObject(l, &l.set.ServiceEntries, file, n, kind, apiVersion)
	case "WorkloadEntry":
		addObject(l, &l.set.WorkloadEntries, file, n, kind, apiVersion)
	case "Sidecar":
		addObject(l, &l.set.Sidecars, file, n, kind, apiVersion)
	default:
		l.diags = append(l.diags, Diagnostic{File: file, Line: n.Line, Severity: Error, Resource: l.refOf(n, kind),
			Msg: fmt.Sprintf("unknown kind %q in %s (want one of %s)", kind, istioGroup, strings.Join(Kinds(), ", "))})
	}
}

// addObject decodes and validates one resource and appends it to list when
// it has no error; its diagnostics go to l either way.
func addObject[S any](l *loader, list *[]*Object[S], file string, n *yaml.Node, kind, apiVersion string) {
	o := &Object[S]{Kind: kind, APIVersion: apiVersion}
	ds := l.decodeObject(file, n, kind, &o.Meta, reflect.ValueOf(&o.Spec).Elem(), &o.Src)
	key := o.Key()
	if prev, dup := l.first[key]; dup && o.Meta.Name != "" {
		ds = append(ds, Diagnostic{File: file, Line: n.Line, Severity: Error, Resource: key,
			Msg: fmt.Sprintf("duplicate %s: first defined at %s", key, prev)})
	}
	if !ds.HasErrors() {
		ds = append(ds, validate(o, l.opts)...)
	}
	l.diags = append(l.diags, ds...)
	if ds.HasErrors() {
		return
	}
	l.first[key] = fmt.Sprintf("%s:%d", file, n.Line)
	*list = append(*list, o)
}

// decodeObject decodes a resource's metadata and spec strictly.
func (l *loader) decodeObject(file string, n *yaml.Node, kind string, meta *ObjectMeta, spec reflect.Value, src *Source) Diagnostics {
	var ds Diagnostics
	d := &decoder{file: file, res: l.refOf(n, kind), lines: map[string]int{}, diags: &ds}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !topLevel[k.Value]:
			d.report(Error, k.Line, k.Value, "unknown field %q", k.Value)
		case k.Value == "metadata":
			d.lines["metadata"] = k.Line
			d.decode(v, reflect.ValueOf(meta).Elem(), "metadata")
		case k.Value == "spec":
			d.lines["spec"] = k.Line
			d.decode(v, spec, "spec")
		}
	}
	if meta.Namespace == "" {
		meta.Namespace = l.opts.Namespace
	}
	*src = Source{File: file, Line: n.Line, lines: d.lines}
	if meta.Name == "" {
		d.report(Error, src.LineOf("metadata"), "metadata.name", "a name is required")
	} else if !dns1123Subdomain(meta.Name) {
		d.report(Error, src.LineOf("metadata.name"), "metadata.name", "%q is not a valid name (lower-case DNS-1123 subdomain)", meta.Name)
	}
	return ds
}
