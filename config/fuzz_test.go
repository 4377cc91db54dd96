package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the decoder: it must never panic,
// and whatever it accepts must have no error diagnostics.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	if _, err := os.Stat(samplesDir); err == nil {
		_ = filepath.WalkDir(samplesDir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && filepath.Ext(p) == ".yaml" {
				seeds = append(seeds, p)
			}
			return nil
		})
	}
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(vsBase))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, diags := Parse("fuzz.yaml", data, Options{})
		if set == nil {
			t.Fatal("Parse returned a nil Set")
		}
		for _, d := range diags {
			if d.File != "fuzz.yaml" || d.Line < 0 {
				t.Fatalf("bad diagnostic place: %s", d)
			}
		}
	})
}
