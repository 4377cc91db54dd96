// Package deploy tests the files under deploy/ that need no Kubernetes
// libraries: the Dockerfile and its build-stage script, the systemd units
// (with systemd-analyze when installed), `make release`, and the README's
// VM and explicit-proxy paths run for real. The kustomize checks are in
// the separate module deploy/check.
package deploy

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// backendEnv makes the test binary a helper HTTP server instead: its value
// is "ADDR NAME"; every answer is "NAME PATH end-user=HEADER\n".
const backendEnv = "REMORA_DEPLOY_BACKEND"

func TestMain(m *testing.M) {
	if v := os.Getenv(backendEnv); v != "" {
		os.Exit(serveBackend(v))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func serveBackend(v string) int {
	addr, name, _ := strings.Cut(v, " ")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	err = http.Serve(ln, backend(name))
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// backend answers with its name, so a test sees which one served.
func backend(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s end-user=%s\n", name, r.URL.Path, r.Header.Get("end-user"))
	})
}

var (
	buildOnce sync.Once
	binDir    string // world-readable, so uid 1337 and 1000 can run the binary
	remoraBin string
	buildErr  error
)

// remora builds cmd/remora once per test run, as the Makefile does, into
// a directory every uid can read.
func remora(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "remora-deploy-")
		if buildErr != nil {
			return
		}
		if buildErr = os.Chmod(binDir, 0o755); buildErr != nil {
			return
		}
		remoraBin = filepath.Join(binDir, "remora")
		cmd := exec.Command("go", "build", "-trimpath", "-o", remoraBin, "./cmd/remora")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/remora: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return remoraBin
}

// publicDir makes a directory every uid can read (t.TempDir is 0700).
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "remora-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyDir copies the regular files of src into dst, world-readable,
// applying replace (old, new pairs) to their contents.
func copyDir(t *testing.T, src, dst string, replace ...string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer(replace...)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), []byte(r.Replace(string(data))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExampleConfigsValid: every Istio config deploy/ ships passes
// `remora validate` with no error and no warning.
func TestExampleConfigsValid(t *testing.T) {
	bin := remora(t)
	for _, dir := range []string{"kubernetes/examples/bookinfo/mesh", "systemd/example"} {
		t.Run(dir, func(t *testing.T) {
			out, err := exec.Command(bin, "validate", "--config", dir).CombinedOutput()
			if err != nil || !strings.Contains(string(out), " 0 errors, 0 warnings") {
				t.Errorf("remora validate --config %s: %v\n%s", dir, err, out)
			}
		})
	}
}
