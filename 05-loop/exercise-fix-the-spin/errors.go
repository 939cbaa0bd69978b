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

// isReset reports a client that aborted the connection (RST) instead
// of closing it. Writing to such a connection fails with EPIPE.
func isReset(err error) bool {
	return is(err, syscall.ECONNRESET) || is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}

// explain turns an error into the one line a learner sees.
func explain(err error) string {
	switch {
	case is(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case isReset(err):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case errors.Is(err, io.EOF):
		return fmt.Sprintf("%v: the client closed its side of the connection (see docs/errors.md#eof)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time (see docs/errors.md#timeout)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
