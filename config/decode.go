package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// decoder walks a YAML node tree into Go values strictly: unknown fields,
// wrong types and unknown enum values are errors that carry the line and
// field path. Field names are accepted in camelCase (the JSON name) and in
// proto snake_case, as Istio accepts both.
type decoder struct {
	file  string
	res   string
	lines map[string]int
	diags *Diagnostics
	// depth and nodes bound the work an input can cause: YAML aliases can
	// refer to their own ancestors or fan out exponentially.
	depth, nodes int
}

// Limits on one resource's YAML tree.
const (
	maxDepth = 64
	maxNodes = 1 << 20
)

func (d *decoder) report(sev Severity, line int, path, format string, args ...any) {
	*d.diags = append(*d.diags, Diagnostic{
		File: d.file, Line: line, Severity: sev, Resource: d.res, Path: path,
		Msg: fmt.Sprintf(format, args...),
	})
}

// fieldInfo is one accepted key of a struct type.
type fieldInfo struct {
	index       int
	name        string
	deprecated  string
	unsupported bool
}

// structFields maps every accepted key of a struct to its field.
type structFields struct {
	byKey   map[string]*fieldInfo
	removed map[string]string
	ignored map[string]bool
}

// removedLister is implemented by structs that list fields Istio removed;
// they are accepted with a warning.
type removedLister interface{ removedFields() map[string]string }

// ignoredLister is implemented by structs that list fields accepted and
// ignored without comment (Kubernetes object metadata).
type ignoredLister interface{ ignoredFields() []string }

// enum is implemented by string types that accept a fixed set of values.
type enum interface{ enumValues() []string }

var fieldCache sync.Map // reflect.Type -> *structFields

var (
	removedType  = reflect.TypeFor[removedLister]()
	ignoredType  = reflect.TypeFor[ignoredLister]()
	enumType     = reflect.TypeFor[enum]()
	durationType = reflect.TypeFor[Duration]()
)

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	sf := &structFields{byKey: map[string]*fieldInfo{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fi := &fieldInfo{index: i, name: name}
		tag := f.Tag.Get("remora")
		if msg, ok := strings.CutPrefix(tag, "deprecated="); ok {
			fi.deprecated = msg
		}
		fi.unsupported = tag == "unsupported"
		sf.byKey[name] = fi
		sf.byKey[snakeCase(name)] = fi
		if p := f.Tag.Get("proto"); p != "" {
			sf.byKey[p] = fi
		}
	}
	zero := reflect.Zero(t).Interface()
	if t.Implements(removedType) {
		sf.removed = zero.(removedLister).removedFields()
	}
	if t.Implements(ignoredType) {
		sf.ignored = map[string]bool{}
		for _, k := range zero.(ignoredLister).ignoredFields() {
			sf.ignored[k] = true
		}
	}
	fieldCache.Store(t, sf)
	return sf
}

// snakeCase turns a JSON name into its proto name: sniHosts → sni_hosts.
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!str" {
			return fmt.Sprintf("string %q", n.Value)
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// decode stores n into v, reporting every problem under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.nodes++
	if d.depth >= maxDepth || d.nodes > maxNodes {
		if d.nodes <= maxNodes+1 || d.depth == maxDepth {
			d.report(Error, n.Line, path, "document too deeply nested or too large (aliases expand past %d levels or %d nodes)", maxDepth, maxNodes)
		}
		d.nodes = maxNodes + 2
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if d.lines != nil && path != "" {
		if _, ok := d.lines[path]; !ok {
			d.lines[path] = n.Line
		}
	}
	if isNull(n) {
		return
	}
	switch {
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case v.Type() == durationType:
		d.decodeDuration(n, v, path)
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, v, path)
	case v.Kind() == reflect.Slice:
		d.decodeSlice(n, v, path)
	case v.Kind() == reflect.Map:
		d.decodeMap(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeDuration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.report(Error, n.Line, path, "want a duration such as 2s, got %s", kindName(n))
		return
	}
	dur, err := parseDuration(n.Value)
	if err != nil {
		d.report(Error, n.Line, path, "%v", err)
		return
	}
	v.Set(reflect.ValueOf(Duration{dur}))
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.report(Error, n.Line, path, "want a mapping, got %s", kindName(n))
		return
	}
	sf := fieldsOf(v.Type())
	seen := map[int]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fpath := joinPath(path, k.Value)
		fi, ok := sf.byKey[k.Value]
		if !ok {
			switch {
			case sf.ignored[k.Value]:
			case sf.removed[k.Value] != "":
				d.report(Warning, k.Line, fpath, "%s", sf.removed[k.Value])
			default:
				d.report(Error, k.Line, fpath, "unknown field %q", k.Value)
			}
			continue
		}
		if seen[fi.index] {
			d.report(Error, k.Line, fpath, "field %q given twice", fi.name)
			continue
		}
		seen[fi.index] = true
		fpath = joinPath(path, fi.name)
		if d.lines != nil {
			d.lines[fpath] = k.Line
		}
		if fi.deprecated != "" {
			d.report(Warning, k.Line, fpath, "deprecated: %s", fi.deprecated)
		}
		if fi.unsupported {
			d.report(Warning, k.Line, fpath, "remora does not yet honour this field; ignored")
		}
		d.decode(val, v.Field(fi.index), fpath)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.report(Error, n.Line, path, "want a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.report(Error, n.Line, path, "want a mapping, got %s", kindName(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.report(Error, k.Line, path, "map keys must be strings")
			continue
		}
		key := reflect.ValueOf(k.Value)
		if m.MapIndex(key).IsValid() {
			d.report(Error, k.Line, joinPath(path, k.Value), "key %q given twice", k.Value)
			continue
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, joinPath(path, k.Value))
		m.SetMapIndex(key, elem)
	}
	v.Set(m)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.report(Error, n.Line, path, "want a %s, got %s", scalarName(v.Kind()), kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		d.decodeString(n, v, path)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Tag != "!!bool" || err != nil {
			d.report(Error, n.Line, path, "want true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int32, reflect.Int64, reflect.Int:
		i, err := strconv.ParseInt(n.Value, 10, v.Type().Bits())
		if !numeric(n) || err != nil {
			d.report(Error, n.Line, path, "want an integer, got %s", kindName(n))
			return
		}
		v.SetInt(i)
	case reflect.Uint32, reflect.Uint64, reflect.Uint:
		u, err := strconv.ParseUint(n.Value, 10, v.Type().Bits())
		if !numeric(n) || err != nil {
			d.report(Error, n.Line, path, "want a non-negative integer that fits %d bits, got %s", v.Type().Bits(), kindName(n))
			return
		}
		v.SetUint(u)
	case reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, 64)
		if (n.Tag != "!!int" && n.Tag != "!!float") || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.report(Error, n.Line, path, "want a number, got %s", kindName(n))
			return
		}
		v.SetFloat(f)
	default:
		d.report(Error, n.Line, path, "unsupported field type %s", v.Type())
	}
}

// numeric accepts YAML integers and, as protobuf JSON does, integers
// written as strings.
func numeric(n *yaml.Node) bool { return n.Tag == "!!int" || n.Tag == "!!str" }

func (d *decoder) decodeString(n *yaml.Node, v reflect.Value, path string) {
	if n.Tag != "!!str" {
		d.report(Error, n.Line, path, "want a string, got %s", kindName(n))
		return
	}
	if v.Type().Implements(enumType) {
		allowed := v.Interface().(enum).enumValues()
		ok := false
		for _, a := range allowed {
			ok = ok || a == n.Value
		}
		if !ok {
			d.report(Error, n.Line, path, "unknown value %q (want one of %s)", n.Value, strings.Join(allowed, ", "))
			return
		}
	}
	v.SetString(n.Value)
}

func scalarName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Float64:
		return "number"
	}
	return "integer"
}
