//go:build !linux && !darwin

package main

import (
	"context"
	"errors"
	"io"
)

// The loop calls poll(2) through golang.org/x/sys/unix, which Windows
// does not have (its model is completion ports, not readiness). There
// the server only explains that; the -flood client uses the net package
// only, and builds here too.
var errNeedsUnix = errors.New("exercise-backpressure calls poll(2) on Unix file descriptors: it needs Linux, macOS or WSL")

func serve(context.Context, config, io.Writer) error { return errNeedsUnix }
