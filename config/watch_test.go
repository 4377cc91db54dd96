package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// configMapDir lays out dir as the kubelet mounts a ConfigMap: the files
// live in a timestamped directory, "..data" links to it, and each file
// name links through "..data". Calling it again swaps "..data" atomically
// and removes the old directory, as the kubelet does.
func configMapDir(t *testing.T, dir, stamp string, files map[string]string) {
	t.Helper()
	ts := filepath.Join(dir, "..2026_12_02_"+stamp)
	for name, body := range files {
		writeFile(t, filepath.Join(ts, name), body)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

type loadResult struct {
	set   *Set
	diags Diagnostics
}

func startWatcher(t *testing.T, dir string, trigger chan struct{}) <-chan loadResult {
	t.Helper()
	loads := make(chan loadResult, 16)
	w := &Watcher{Dir: dir, Trigger: trigger, OnLoad: func(s *Set, d Diagnostics, err error) {
		if err != nil {
			t.Errorf("load: %v", err)
		}
		loads <- loadResult{s, d}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("watch: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return loads
}

func nextLoad(t *testing.T, loads <-chan loadResult, within time.Duration) loadResult {
	t.Helper()
	select {
	case l := <-loads:
		return l
	case <-time.After(within):
		t.Fatalf("no reload within %s", within)
	}
	return loadResult{}
}

func vsWithHost(host string) string {
	return strings.Replace(vsBase, "  - reviews\n", "  - "+host+"\n", 1)
}

func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	configMapDir(t, dir, "01", map[string]string{"vs.yaml": vsWithHost("one.example.com")})
	loads := startWatcher(t, dir, nil)
	first := nextLoad(t, loads, 2*time.Second)
	if got := first.set.VirtualServices[0].Spec.Hosts[0]; got != "one.example.com" {
		t.Fatalf("first load host = %q; want one.example.com", got)
	}
	for i, host := range []string{"two.example.com", "three.example.com"} {
		start := time.Now()
		configMapDir(t, dir, string(rune('2'+i))+"x", map[string]string{"vs.yaml": vsWithHost(host)})
		for {
			l := nextLoad(t, loads, time.Second)
			if len(l.set.VirtualServices) == 1 && l.set.VirtualServices[0].Spec.Hosts[0] == host {
				break
			}
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("swap to %s seen after %s; want within 1s", host, took)
		} else {
			t.Logf("swap to %s seen after %s", host, took.Round(time.Millisecond))
		}
	}
}

func TestWatchEditAndTrigger(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sub", "vs.yaml"), vsWithHost("one.example.com"))
	trigger := make(chan struct{})
	loads := startWatcher(t, dir, trigger)
	nextLoad(t, loads, 2*time.Second)
	writeFile(t, filepath.Join(dir, "sub", "vs.yaml"), "not: [valid")
	if l := nextLoad(t, loads, time.Second); !l.diags.HasErrors() {
		t.Errorf("invalid YAML loaded without error")
	}
	writeFile(t, filepath.Join(dir, "sub", "vs.yaml"), vsWithHost("two.example.com"))
	if l := nextLoad(t, loads, time.Second); l.diags.HasErrors() || l.set.VirtualServices[0].Spec.Hosts[0] != "two.example.com" {
		t.Errorf("edit not picked up: %v", l.diags)
	}
	trigger <- struct{}{}
	nextLoad(t, loads, time.Second)
}
