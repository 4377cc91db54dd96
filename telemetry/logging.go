package telemetry

import (
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// LevelHandler serves Envoy's admin /logging endpoint for the process log
// level lvl. POST /logging?level=L sets it, where L is one of Envoy's
// names (trace, debug, info, warning or warn, error, critical, off; trace
// means debug and off logs only fatal errors); any method without a level
// returns the current level. The reply is "active level: L\n". An unknown
// level or a GET that tries to set one is a 400 or 405.
func LevelHandler(lvl zap.AtomicLevel) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("level")
		if name != "" {
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				http.Error(w, "set the level with POST", http.StatusMethodNotAllowed)
				return
			}
			l, ok := envoyLevels[name]
			if !ok {
				http.Error(w, "unknown level "+name+": want trace, debug, info, warning, error, critical or off", http.StatusBadRequest)
				return
			}
			lvl.SetLevel(l)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("active level: " + lvl.Level().String() + "\n"))
	})
}

// envoyLevels maps Envoy's log level names to zap's.
var envoyLevels = map[string]zapcore.Level{
	"trace": zapcore.DebugLevel, "debug": zapcore.DebugLevel, "info": zapcore.InfoLevel,
	"warning": zapcore.WarnLevel, "warn": zapcore.WarnLevel, "error": zapcore.ErrorLevel,
	"critical": zapcore.DPanicLevel, "off": zapcore.FatalLevel,
}
