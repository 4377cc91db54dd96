package deploy

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// checkStatic fails unless path is a Linux ELF with no dynamic loader
// (CGO_ENABLED=0) and returns its machine.
func checkStatic(t *testing.T, path string) elf.Machine {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: has an ELF interpreter: not a static binary", path)
		}
	}
	return f.Machine
}

// TestRelease runs `make release` into a temporary DIST and checks both
// binaries, their checksums, and that the amd64 one prints the stamped
// version.
func TestRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: cross-compiles two binaries")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	dist := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "release", "DIST="+dist, "VERSION=v0.0.0-releasetest", "COMMIT=c0ffee1")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	machines := map[string]elf.Machine{"remora-linux-amd64": elf.EM_X86_64, "remora-linux-arm64": elf.EM_AARCH64}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q: want sha256sum's format", line)
		}
		listed[name] = sum
	}
	for name, want := range machines {
		path := filepath.Join(dist, name)
		if got := checkStatic(t, path); got != want {
			t.Errorf("%s: machine %v; want %v", name, got, want)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); listed[name] != got {
			t.Errorf("SHA256SUMS has %s for %s; the file's is %s", listed[name], name, got)
		}
	}
	if len(listed) != len(machines) {
		t.Errorf("SHA256SUMS lists %v; want exactly %d binaries", listed, len(machines))
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("cannot run the amd64 binary on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	out, err := exec.Command(filepath.Join(dist, "remora-linux-amd64"), "version").CombinedOutput()
	if want := "remora v0.0.0-releasetest (commit c0ffee1, "; err != nil || !strings.HasPrefix(string(out), want) {
		t.Errorf("remora-linux-amd64 version = %q, %v; want prefix %q", out, err, want)
	}
}
