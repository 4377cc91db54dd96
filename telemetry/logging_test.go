package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestLevelHandler(t *testing.T) {
	lvl := zap.NewAtomicLevelAt(zapcore.InfoLevel)
	h := LevelHandler(lvl)
	tests := []struct {
		name, method, target string
		wantCode             int
		wantLevel            zapcore.Level
	}{
		{"show", "GET", "/logging", 200, zapcore.InfoLevel},
		{"set debug", "POST", "/logging?level=debug", 200, zapcore.DebugLevel},
		{"set warning", "POST", "/logging?level=warning", 200, zapcore.WarnLevel},
		{"trace is debug", "POST", "/logging?level=trace", 200, zapcore.DebugLevel},
		{"off", "POST", "/logging?level=off", 200, zapcore.FatalLevel},
		{"unknown", "POST", "/logging?level=loud", 400, zapcore.FatalLevel},
		{"GET cannot set", "GET", "/logging?level=info", 405, zapcore.FatalLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("%s %s = %d; want %d", tt.method, tt.target, rec.Code, tt.wantCode)
			}
			if got := lvl.Level(); got != tt.wantLevel {
				t.Errorf("level = %v; want %v", got, tt.wantLevel)
			}
			if rec.Code == http.StatusOK && rec.Body.String() != "active level: "+tt.wantLevel.String()+"\n" {
				t.Errorf("body = %q", rec.Body.String())
			}
		})
	}
}
