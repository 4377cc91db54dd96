//go:build !linux

package iptables

import "context"

// An Applier installs and removes Plans. It works only on Linux; elsewhere
// every method returns ErrNotSupported.
type Applier struct {
	// Netns names the network namespace to work in; "" means the current one.
	Netns string
}

// Install returns ErrNotSupported.
func (a *Applier) Install(ctx context.Context, p Plan) error { return ErrNotSupported }

// Cleanup returns ErrNotSupported.
func (a *Applier) Cleanup(ctx context.Context, p Plan) error { return ErrNotSupported }
