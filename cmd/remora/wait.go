package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// cmdWait blocks until the local proxy's /healthz/ready answers 200:
// exit 0 once ready, 1 on timeout.
func cmdWait(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("wait", stderr)
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait")
	url := fs.String("url", "http://127.0.0.1:15021/healthz/ready", "readiness URL to poll")
	interval := fs.Duration("interval", 200*time.Millisecond, "poll interval")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintln(stdout, "remora is ready")
				return 0
			}
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "remora wait: not ready after %s (%s)\n", *timeout, *url)
			return 1
		case <-time.After(*interval):
		}
	}
}
