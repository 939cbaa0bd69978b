// The errors of this program, each turned into one line that says
// what happened and what to do.

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
	var netErr net.Error
	switch {
	case isErrno(err, syscall.EADDRINUSE):
		return fmt.Sprintf("%v: another program already listens there; stop it or choose another -addr (see docs/errors.md#eaddrinuse)", err)
	case isErrno(err, syscall.ECONNRESET):
		return fmt.Sprintf("%v: the peer aborted the connection (see docs/errors.md#econnreset)", err)
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return fmt.Sprintf("%v: the client took nothing in time (see docs/errors.md#timeout)", err)
	}
	return err.Error()
}
