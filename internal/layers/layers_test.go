// Package layers holds the test that keeps DESIGN.md's import arrows true:
// data flows one way, and a package imports only from the layers below it.
package layers

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/remora-mesh/remora/"

// allowed lists, for every package, the remora packages its non-test code
// may import. A package missing here fails the test until it is placed.
var allowed = map[string][]string{
	"internal/clock":     {},
	"internal/rawio":     {},
	"internal/headerkey": {},
	"config":             {},
	"lb":                 {},
	"fault":              {},
	"outlier":            {"internal/clock"},
	"iptables":           {},
	"routing":            {"config", "fault"},
	"snapshot":           {"config", "routing", "lb", "fault", "outlier", "internal/clock"},
	"upstream":           {"config", "snapshot", "lb", "outlier", "internal/clock", "internal/rawio", "internal/headerkey"},
	"telemetry":          {},
	"proxy":              {"config", "snapshot", "routing", "fault", "upstream", "telemetry", "lb", "outlier", "internal/clock", "internal/rawio", "internal/headerkey"},
	"admin":              {"config", "routing", "snapshot", "upstream", "telemetry"},
	"cmd/remora":         {"*"},
	"internal/layers":    {},
	"internal/testns":    {},
}

// pure packages must not touch the network.
var pure = map[string]bool{"lb": true, "fault": true, "outlier": true}

func TestImportLayers(t *testing.T) {
	root := "../.."
	pkgs := map[string]map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "deploy") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if pkgs[rel] == nil {
			pkgs[rel] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			pkgs[rel][path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < len(allowed)/2 {
		t.Fatalf("found %d packages under %s: the walk is broken", len(pkgs), root)
	}
	names := make([]string, 0, len(pkgs))
	for n := range pkgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, pkg := range names {
		if strings.HasPrefix(pkg, "e2e") || strings.HasPrefix(pkg, "bench") {
			continue // test and benchmark code may use anything
		}
		ok, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not placed in a layer: add it to allowed (and DESIGN's table)", pkg)
			continue
		}
		for imp := range pkgs[pkg] {
			if pure[pkg] && (imp == "net" || imp == "net/http" || strings.HasPrefix(imp, "net/http/")) {
				t.Errorf("%s is a pure policy package but imports %s", pkg, imp)
			}
			dep, ours := strings.CutPrefix(imp, module)
			if !ours || len(ok) == 1 && ok[0] == "*" {
				continue
			}
			if !contains(ok, dep) {
				t.Errorf("%s imports %s: not allowed (allowed: %v)", pkg, dep, ok)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
