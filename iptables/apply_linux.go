package iptables

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// An Applier installs and removes Plans with iptables-restore and netlink.
// Its methods need CAP_NET_ADMIN in the target network namespace. The zero
// Applier works in the calling process's network namespace. An Applier
// holds no state; calls must not run concurrently against one namespace.
type Applier struct {
	// Netns names the network namespace to work in, as "ip netns exec
	// NAME" does; "" means the current one.
	Netns string
}

// Install makes the system hold exactly p: routes and loopback addresses
// first (harmless alone), then each family's rules with one
// iptables-restore --noflush run whose tables each commit atomically.
// Install is idempotent: our chains are flushed and refilled and our
// rules in built-in chains replaced, so running it twice leaves
// iptables-save as one run does. If any step fails, Install removes
// what p installs, so the pod is never left half-captured, and returns
// the error.
func (a *Applier) Install(ctx context.Context, p Plan) error {
	err := a.install(ctx, p)
	if err == nil {
		return nil
	}
	if cerr := a.Cleanup(ctx, p); cerr != nil {
		return errors.Join(err, fmt.Errorf("undoing partial install: %w", cerr))
	}
	return err
}

func (a *Applier) install(ctx context.Context, p Plan) error {
	if err := a.addRouting(p); err != nil {
		return err
	}
	for _, rs := range p.Rulesets {
		if err := a.installRuleset(ctx, rs); err != nil {
			return fmt.Errorf("install %s rules: %w", rs.Family, err)
		}
	}
	return nil
}

// Cleanup removes everything p installs that is present: our rules in
// built-in chains, our chains, the routes and loopback addresses. It
// leaves other rules alone and succeeds when nothing is left to remove,
// so running it twice succeeds both times. Cleanup must be given the
// Plan built from the flags Install was given.
func (a *Applier) Cleanup(ctx context.Context, p Plan) error {
	var errs []error
	for _, rs := range p.Rulesets {
		if err := a.cleanupRuleset(ctx, rs); err != nil {
			errs = append(errs, fmt.Errorf("clean up %s rules: %w", rs.Family, err))
		}
	}
	if err := a.removeRouting(p); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (a *Applier) installRuleset(ctx context.Context, rs Ruleset) error {
	cur, present, err := a.state(ctx, rs)
	if err != nil {
		return err
	}
	_, err = a.run(ctx, installScript(rs, cur, present), rs.Family.restoreCmd(), "-w", "--noflush")
	return err
}

func (a *Applier) cleanupRuleset(ctx context.Context, rs Ruleset) error {
	cur, present, err := a.state(ctx, rs)
	if err != nil {
		return err
	}
	script := cleanupScript(rs, cur, present)
	if script == "" {
		return nil
	}
	_, err = a.run(ctx, script, rs.Family.restoreCmd(), "-w", "--noflush")
	return err
}

// state returns the current tables and which of rs's checked rules exist.
func (a *Applier) state(ctx context.Context, rs Ruleset) (map[string]*tableState, []Rule, error) {
	out, err := a.run(ctx, "", rs.Family.saveCmd())
	if err != nil {
		return nil, nil, err
	}
	cur := parseSave(out)
	var present []Rule
	for _, r := range checkedRules(rs) {
		ok, err := a.exists(ctx, rs.Family, r)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			present = append(present, r)
		}
	}
	return cur, present, nil
}

// exists reports whether r is in its chain, by iptables -C.
func (a *Applier) exists(ctx context.Context, fam Family, r Rule) (bool, error) {
	args := append([]string{"-w", "-t", r.Table, "-C", r.Chain}, r.Spec...)
	_, err := a.run(ctx, "", fam.iptablesCmd(), args...)
	var ce *commandError
	if errors.As(err, &ce) && ce.exitCode == 1 && !errors.Is(err, ErrNeedNetAdmin) {
		return false, nil
	}
	return err == nil, err
}

// commandError is a failed iptables command, with what it printed.
type commandError struct {
	cmd      string
	exitCode int
	stderr   string
	err      error
}

func (e *commandError) Error() string {
	if e.stderr == "" {
		return e.cmd + ": " + e.err.Error()
	}
	return e.cmd + ": " + e.err.Error() + ": " + e.stderr
}

func (e *commandError) Unwrap() error { return e.err }

// run runs the named binary with args in a's network namespace, feeding
// it stdin, and returns its stdout.
func (a *Applier) run(ctx context.Context, stdin, name string, args ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", &MissingError{Binary: name, Package: "iptables"}
	}
	argv := append([]string{path}, args...)
	if a.Netns != "" {
		ip, err := exec.LookPath("ip")
		if err != nil {
			return "", &MissingError{Binary: "ip", Package: "iproute2"}
		}
		argv = append([]string{ip, "netns", "exec", a.Netns}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		ce := &commandError{cmd: name, stderr: msg, err: err, exitCode: -1}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.exitCode = ee.ExitCode()
		}
		if permissionDenied(msg) {
			ce.err = ErrNeedNetAdmin
		}
		return stdout.String(), ce
	}
	return stdout.String(), nil
}
