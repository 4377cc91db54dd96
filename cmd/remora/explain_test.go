package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var explainCases = []struct {
	name string
	args []string
}{
	{"jason", []string{"GET", "http://reviews:9080/reviews/1", "-H", "end-user: jason"}},
	{"anonymous", []string{"GET", "http://reviews:9080/reviews/1"}},
	{"unknown-host", []string{"GET", "http://elsewhere.example.com/"}},
	{"jason-json", []string{"--output", "json", "GET", "http://reviews:9080/reviews/1", "-H", "end-user: jason"}},
}

func runExplain(t *testing.T, dir string, args []string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := cmdExplain(append([]string{"--config", dir}, args...), &out, &errb); code != 0 {
		t.Fatalf("explain exit %d: %s", code, errb.String())
	}
	return out.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "explain", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestExplainGolden(t *testing.T) {
	for _, tc := range explainCases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, runExplain(t, "testdata/explain/bookinfo", tc.args))
		})
	}
}

// TestExplainIstioSamples runs the same requests over Istio's own bookinfo
// files (with our ServiceEntry for the reviews endpoints) and expects the
// same answers.
func TestExplainIstioSamples(t *testing.T) {
	const samples = "../../../shared/istio-samples/samples/bookinfo/networking"
	if _, err := os.Stat(samples); err != nil {
		t.Skipf("Istio samples not present at %s (only in the project's own checkouts): conformance not checked", samples)
	}
	dir := t.TempDir()
	for src, dst := range map[string]string{
		"testdata/explain/bookinfo/reviews-se.yaml":       "se.yaml",
		samples + "/destination-rule-all.yaml":            "dr.yaml",
		samples + "/virtual-service-reviews-test-v2.yaml": "vs.yaml",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range explainCases {
		if strings.HasSuffix(tc.name, "json") {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, runExplain(t, dir, tc.args))
		})
	}
}
