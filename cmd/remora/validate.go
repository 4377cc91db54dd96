package main

import (
	"fmt"
	"io"

	"github.com/remora-mesh/remora/config"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	dir := fs.String("config", "", "config directory (required)")
	ns := fs.String("namespace", "default", "namespace for resources without one")
	domain := fs.String("domain", "cluster.local", "cluster domain for short host names")
	verbose := fs.Bool("v", false, "also print notes (skipped documents)")
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if *dir == "" && fs.NArg() == 1 {
		*dir = fs.Arg(0)
	}
	if *dir == "" {
		fmt.Fprintln(stderr, "remora validate: --config DIR is required")
		return 2
	}
	set, diags, err := config.Load(*dir, config.Options{Namespace: *ns, Domain: *domain})
	if err != nil {
		fmt.Fprintf(stderr, "remora validate: %v\n", err)
		return 1
	}
	errs, warns := 0, 0
	for _, d := range diags {
		switch d.Severity {
		case config.Error:
			errs++
		case config.Warning:
			warns++
		case config.Note:
			if !*verbose {
				continue
			}
		}
		fmt.Fprintln(stdout, d)
	}
	fmt.Fprintf(stderr, "%d resources, %d errors, %d warnings\n", set.Count(), errs, warns)
	if errs > 0 {
		return 1
	}
	return 0
}
