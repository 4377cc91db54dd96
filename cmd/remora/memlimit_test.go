package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestCgroupMemLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		files []string
		want  int64
		ok    bool
	}{
		{"v2 limit", []string{write("v2", "536870912\n")}, 536870912, true},
		{"v2 max", []string{write("v2max", "max\n")}, 0, false},
		{"v1 unlimited", []string{filepath.Join(dir, "absent"), write("v1", "9223372036854771712\n")}, 0, false},
		{"v1 limit", []string{filepath.Join(dir, "absent"), write("v1b", "1048576")}, 1048576, true},
		{"none", []string{filepath.Join(dir, "absent")}, 0, false},
		{"garbage", []string{write("g", "lots")}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cgroupMemLimit(tt.files)
			if got != tt.want || ok != tt.ok {
				t.Errorf("cgroupMemLimit = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSetMemoryLimit(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	p := filepath.Join(t.TempDir(), "memory.max")
	os.WriteFile(p, []byte("1000000000\n"), 0o644)
	if got := setMemoryLimit(func(string) string { return "" }, []string{p}); got != 900000000 {
		t.Errorf("limit %d; want 90%% of memory.max", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 900000000 {
		t.Errorf("runtime limit %d; want 900000000", got)
	}
	if got := setMemoryLimit(func(k string) string { return map[string]string{"GOMEMLIMIT": "1GiB"}[k] }, []string{p}); got != 0 {
		t.Errorf("limit %d with GOMEMLIMIT set; want it left alone", got)
	}
}

func TestCheckAdminAddr(t *testing.T) {
	tests := []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:15000", false, true},
		{"[::1]:15000", false, true},
		{"localhost:15000", false, true},
		{":15000", false, false},
		{"0.0.0.0:15000", false, false},
		{"10.0.0.1:15000", false, false},
		{"0.0.0.0:15000", true, true},
	}
	for _, tt := range tests {
		if err := checkAdminAddr(tt.addr, tt.remote); (err == nil) != tt.ok {
			t.Errorf("checkAdminAddr(%q, %v) = %v; want ok %v", tt.addr, tt.remote, err, tt.ok)
		}
	}
}
