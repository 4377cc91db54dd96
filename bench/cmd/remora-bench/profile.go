package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiles loads remora at full speed and at 1000 rps while its admin
// port's pprof records, and saves cpu-max.pprof, cpu-1000.pprof and
// allocs.pprof under s.profile (`go tool pprof -top FILE`).
func (s *suite) profiles() error {
	t := s.find("remora")
	if t == nil || s.admin == "" {
		return fmt.Errorf("-profile: remora is not running")
	}
	if err := os.MkdirAll(s.profile, 0o755); err != nil {
		return err
	}
	for _, p := range []struct {
		file string
		spec loadSpec
	}{
		{"cpu-max.pprof", loadSpec{qps: 0, conns: 64, path: "/", dur: 5 * time.Second}},
		{"cpu-1000.pprof", loadSpec{qps: 1000, conns: 16, path: "/", dur: 5 * time.Second}},
	} {
		done := make(chan error, 1)
		go func() {
			done <- s.fetchProfile("/debug/pprof/profile?seconds=4", filepath.Join(s.profile, p.file))
		}()
		if _, err := s.runLoad(t, p.spec); err != nil {
			return err
		}
		if err := <-done; err != nil {
			return err
		}
	}
	s.logf("profiles written to %s", s.profile)
	return s.fetchProfile("/debug/pprof/allocs", filepath.Join(s.profile, "allocs.pprof"))
}

// find returns the target called name, or nil.
func (s *suite) find(name string) *target {
	for _, t := range s.targets {
		if t.name == name {
			return t
		}
	}
	return nil
}

func (s *suite) fetchProfile(path, file string) error {
	resp, err := http.Get("http://" + s.admin + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
