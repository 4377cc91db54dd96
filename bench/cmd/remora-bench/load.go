package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// loadSpec is one fortio run.
type loadSpec struct {
	qps   int // 0: as fast as possible
	conns int
	dur   time.Duration
	path  string
}

// loadResult is what one fortio run measured, with the proxy's CPU.
type loadResult struct {
	qps           float64
	requests      int64
	errors        int64
	p50, p90, p99 float64 // seconds
	cpu           float64 // proxy CPU seconds during the run
}

// cpuPer1000 is the proxy's CPU seconds per 1000 requests.
func (r loadResult) cpuPer1000() float64 {
	if r.requests == 0 {
		return 0
	}
	return r.cpu / float64(r.requests) * 1000
}

// fortioJSON is the part of fortio's -json output the suite reads.
type fortioJSON struct {
	ActualQPS         float64
	NumThreads        int
	RetCodes          map[string]int64
	DurationHistogram struct {
		Count       int64
		Percentiles []struct{ Percentile, Value float64 }
	}
}

// runLoad drives t with fortio pinned to the load core: -uniform pacing,
// 10 µs histogram buckets, keep-alive, Host set for remora's routing.
func (s *suite) runLoad(t *target, spec loadSpec) (loadResult, error) {
	out := filepath.Join(s.dir, "fortio.json")
	os.Remove(out)
	argv := pinned(s.loadCPU, s.fortio, "load", "-quiet", "-qps", strconv.Itoa(spec.qps),
		"-c", strconv.Itoa(spec.conns), "-t", spec.dur.String(), "-uniform", "-r", "0.00001",
		"-p", "50,90,99", "-H", "Host: "+benchHost, "-json", out,
		"http://"+t.addr+spec.path)
	cpu0 := cpuTime(t.pid)
	cmd := exec.Command(argv[0], argv[1:]...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return loadResult{}, fmt.Errorf("fortio against %s: %v\n%s", t.name, err, b)
	}
	cpu := cpuTime(t.pid) - cpu0
	data, err := os.ReadFile(out)
	if err != nil {
		return loadResult{}, err
	}
	var fj fortioJSON
	if err := json.Unmarshal(data, &fj); err != nil {
		return loadResult{}, err
	}
	r := loadResult{qps: fj.ActualQPS, cpu: cpu}
	for code, n := range fj.RetCodes {
		r.requests += n
		if code != "200" {
			r.errors += n
		}
	}
	r.requests += int64(fj.NumThreads) // each connection's warm-up request
	for _, p := range fj.DurationHistogram.Percentiles {
		switch p.Percentile {
		case 50:
			r.p50 = p.Value
		case 90:
			r.p90 = p.Value
		case 99:
			r.p99 = p.Value
		}
	}
	return r, nil
}
