package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `remora demo` as a user would and checks its report: the
// split, the header route, the fault and the circuit breaker all show.
func TestDemo(t *testing.T) {
	var out, errb bytes.Buffer
	start := time.Now()
	if code := cmdDemo(nil, &out, &errb); code != 0 {
		t.Fatalf("remora demo exit %d: %s", code, errb.String())
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("demo took %s; want under 20s", took)
	}
	report := out.String()
	t.Log("\n" + report)
	for _, want := range []string{"reviews-v1", "reviews-v2", "reviews-v3 20 (100%)", "fault filter abort (FI)", "503 overflow (UO)"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(report, "1500") || strings.Contains(report, ":150") {
		t.Errorf("demo used a 150xx port; it must use ephemeral ports only")
	}
}
