//go:build unix

package main

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time, user plus system, that this whole
// process has used so far (getrusage with RUSAGE_SELF).
func processCPU() (time.Duration, bool) {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0, false
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()), true
}
