package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samplesDir is the official Istio sample YAML beside the repository in
// the developers' and CI's checkouts; a user's clone does not have it.
const samplesDir = "../../shared/istio-samples"

func sampleFiles(tb testing.TB) []string {
	tb.Helper()
	if _, err := os.Stat(samplesDir); err != nil {
		tb.Skipf("Istio samples not present at %s (only in the project's own checkouts): conformance not checked", samplesDir)
	}
	var files []string
	_ = filepath.WalkDir(samplesDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		tb.Fatalf("no YAML under %s", samplesDir)
	}
	return files
}

// TestIstioSamples loads every official sample file on its own, as
// `remora validate --config FILE` does: each must load without error.
func TestIstioSamples(t *testing.T) {
	files := sampleFiles(t)
	total := 0
	for _, f := range files {
		set, diags, err := Load(f, Options{})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%s:\n%s", f, joinDiags(diags.Errors()))
		}
		total += set.Count()
	}
	t.Logf("%d sample files, %d resources loaded", len(files), total)
	if total < 50 {
		t.Errorf("only %d resources loaded from the samples; want them all", total)
	}
}
