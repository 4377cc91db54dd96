package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a protobuf Duration written as Go/Istio text: "2s", "100ms",
// "3m", "1h", "1.5s".
type Duration struct {
	time.Duration
}

// parseDuration accepts what Istio accepts: a decimal number with a unit.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 2s, 100ms, 3m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("invalid duration %q: negative", s)
	}
	return d, nil
}

// MarshalJSON writes the duration as Go text ("1.5s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// D returns the duration, or def when d is nil.
func (d *Duration) D(def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}
