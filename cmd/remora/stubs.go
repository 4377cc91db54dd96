package main

import (
	"fmt"
	"io"
)

func notYet(name string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "remora %s: not yet implemented\n", name)
	return 2
}

func cmdExplain(args []string, stdout, stderr io.Writer) int { return notYet("explain", stderr) }
