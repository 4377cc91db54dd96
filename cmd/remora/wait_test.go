package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestWait(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if ready.Load() {
			w.Write([]byte("LIVE\n"))
			return
		}
		http.Error(w, "PRE_INITIALIZING", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	url := srv.URL + "/healthz/ready"
	var out, errb bytes.Buffer
	if code := cmdWait([]string{"--url", url, "--timeout", "300ms", "--interval", "20ms"}, &out, &errb); code != 1 {
		t.Errorf("not ready: exit %d; want 1 after the timeout", code)
	}
	ready.Store(true)
	if code := cmdWait([]string{"--url", url, "--timeout", "2s"}, &out, &errb); code != 0 {
		t.Errorf("ready: exit %d (%s); want 0", code, errb.String())
	}
}
