package main

// The error messages a learner sees, and how causes are recognised on
// every system.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// is reports whether err is errno. Windows reports socket errors with
// Winsock's own numbers, which are not the syscall.E* values Go defines
// there, so is checks that number too (errors_windows.go has them).
func is(err error, errno syscall.Errno) bool {
	if errors.Is(err, errno) {
		return true
	}
	wsa, ok := winsock[errno]
	return ok && errors.Is(err, wsa)
}

// explain turns an error into the one line a learner sees.
func explain(err error) string {
	var dnsErr *net.DNSError
	switch {
	case is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%v: nothing listens at that address; is the server running? (see docs/errors.md#econnrefused)", err)
	case is(err, syscall.ECONNRESET):
		return fmt.Sprintf("%v: the server closed its listener before our turn came (see docs/errors.md#econnreset)", err)
	case errors.Is(err, io.EOF):
		return fmt.Sprintf("%v: the server closed the connection without a greeting (see docs/errors.md#eof)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: our turn did not come in time; raise -timeout (see docs/errors.md#timeout)", err)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%v: the host name could not be resolved (see docs/errors.md#no-such-host)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed, or a dial that gave up.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
