// The errors of this program, each turned into one line that says what
// happened and what to do.

package main

import (
	"errors"
	"fmt"
	"syscall"
)

// Winsock reports its own error numbers, which are not the syscall.E*
// values Go defines on Windows, so each cause is checked both ways. The
// numbers are declared on every system, not only in a Windows file, so
// that the tests check on Linux and macOS too that isAddrInUse knows
// Windows' error; errors_windows_test.go checks them against
// golang.org/x/sys/windows.
const (
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
)

// explain turns an error into the one line a learner sees.
func explain(err error) string {
	switch {
	case errors.Is(err, errAllInUse):
		return fmt.Sprintf("%v: stop what runs there, or raise -tries (see docs/errors.md#eaddrinuse)", err)
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, wsaEADDRNOTAVAIL):
		return fmt.Sprintf("%v: that IP address is not one of this machine's (see docs/errors.md#eaddrnotavail)", err)
	}
	return err.Error()
}
