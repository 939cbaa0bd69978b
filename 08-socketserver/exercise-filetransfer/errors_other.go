//go:build !windows

package main

import (
	"errors"
	"syscall"
)

// isErrno reports whether err holds the system's error number errno. On
// Unix the kernel's numbers are the ones package syscall names, so
// errors.Is is all it takes. (errors_windows.go does the same for
// Winsock, whose numbers differ.)
func isErrno(err error, errno syscall.Errno) bool {
	return errors.Is(err, errno)
}
