package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// explain turns an error into the one line a learner sees.
func explain(err error) string {
	switch {
	case isErrno(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%v: another program already uses that UDP port; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case isErrno(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%v: nothing receives on that UDP port; is the server running? (see docs/errors.md#econnrefused)", err)
	case isTimeout(err):
		return fmt.Sprintf("%v: no answer in time; is the server running? (see docs/errors.md#timeout)", err)
	}
	return err.Error()
}

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
