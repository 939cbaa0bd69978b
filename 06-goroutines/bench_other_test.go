//go:build !unix

package main

import "time"

// processCPU is not measured here: getrusage is a Unix call, so the
// benchmarks report no CPU figure on this platform.
func processCPU() (time.Duration, bool) { return 0, false }
